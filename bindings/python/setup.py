"""setup.py — records where the shared library was built, so that an installed
package finds "the one it was built beside" (libnode/_build_info.py).  Everything
else is in pyproject.toml.  LIBNODE_BUILD_DIR=/path overrides the search for the
build folder (default: <repository>/build)."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _dirs():
    out = []
    for d in ([os.environ["LIBNODE_BUILD_DIR"]] if os.environ.get("LIBNODE_BUILD_DIR") else
              [os.path.join(HERE, "..", "..", b) for b in ("build", "build-release", "build-shared")]):
        if os.path.isdir(d) and any(n.startswith("libnode_ode.so") or n.startswith("libnode_ode.")
                                    for n in os.listdir(d)):
            out.append(os.path.realpath(d))
    return out


class BuildPy(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "libnode", "_build_info.py")
        with open(target, "w") as f:
            f.write("# written by setup.py at install time: where libnode_ode.so was built\n")
            f.write("LIBRARY_DIRS = %r\n" % (_dirs(),))


setup(cmdclass={"build_py": BuildPy})
