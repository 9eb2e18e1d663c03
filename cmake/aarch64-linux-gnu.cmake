# Cross-compile for 64-bit Arm Linux with Debian's cross toolchain:
#   apt-get install gcc-aarch64-linux-gnu            (libc in /usr/aarch64-linux-gnu)
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# With qemu-user installed (qemu-aarch64), ctest runs the aarch64 programs through it.
# The tests need an aarch64 cmocka: pass -DCMOCKA_INCLUDE_DIR=... -DCMOCKA_LIBRARY=...
# (.ci/run unpacks Debian's libcmocka-dev:arm64), otherwise they are left out.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(LIBNODE_CROSS_SYSROOT /usr/aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH ${LIBNODE_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(LIBNODE_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(LIBNODE_QEMU_AARCH64)
  # -L: where the aarch64 dynamic loader and libc are.
  set(CMAKE_CROSSCOMPILING_EMULATOR ${LIBNODE_QEMU_AARCH64} -L ${LIBNODE_CROSS_SYSROOT})
endif()
