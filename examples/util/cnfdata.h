/* cnfdata.h — data for the continuous normalizing flow example (examples/cnf.c):
 * the 2-D toy densities of torchdiffeq's examples/cnf.py and FFJORD's lib/toy_data.py
 * (Grathwohl et al. 2019) with seeded samplers and, where it is known, the exact
 * log-density (and so the true differential entropy by Monte Carlo); and a reader for
 * point clouds in CSV (a header line, then one point per row, D columns).
 */
#ifndef EX_CNFDATA_H
#define EX_CNFDATA_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/* The toys, as their generators define them (x in R²):
   circles       torchdiffeq cnf.py's sklearn make_circles(noise=0.06, factor=0.5):
                 radius 1 or 0.5 with probability ½ each, angle uniform, plus
                 N(0, 0.06²) per coordinate;
   moons         FFJORD: make_moons(noise=0.1) · 2 + (−1, −0.2): the upper arc
                 (cos θ, sin θ) or the lower arc (1 − cos θ, 0.5 − sin θ), θ ~ U[0, π],
                 plus N(0, 0.1²) per coordinate, then scaled and shifted;
   8gaussians    FFJORD: centre 4·(cos kπ/4, sin kπ/4), k uniform in 0..7, plus
                 N(0, 0.5²) per coordinate, all divided by 1.414;
   checkerboard  FFJORD: uniform on the 8 squares of side 2 in [−4, 4]² whose
                 lower-left corner (2i, 2j) has i + j even (density 1/32);
   pinwheel      FFJORD: 5 arms; radial r ~ N(1, 0.3²), tangential s ~ N(0, 0.1²),
                 x = 2 R(a)ᵀ (r, s) with a = 2πk/5 + 0.25 eʳ, k uniform in 0..4.
   sklearn spaces the angles of one batch evenly and FFJORD draws equal classes; here
   every point is an independent draw from the limiting density (what the exact
   densities describe). */
typedef enum ex_toy {
    EX_TOY_CIRCLES, EX_TOY_MOONS, EX_TOY_8GAUSSIANS, EX_TOY_CHECKERBOARD, EX_TOY_PINWHEEL,
    EX_TOY_COUNT
} ex_toy;

const char *ex_toy_name(ex_toy t);                 /* NULL for an unknown value */
int         ex_toy_parse(const char *name, ex_toy *out);   /* 0, or -1 if unknown */

/* n points (n × 2, row-major). */
void ex_toy_sample(ex_toy t, ex_rng *r, size_t n, double *x);

/* Whether log p is known (all but pinwheel; moons by quadrature over the arc). */
int ex_toy_has_density(ex_toy t);

/* log p(x) for one point (−inf off the support; NaN if the density is unknown). */
double ex_toy_log_prob(ex_toy t, const double *x);

/* Half-width of a square around 0 that holds the data (for figures). */
double ex_toy_extent(ex_toy t);

/* The differential entropy H = −E log p(x) by Monte Carlo over n samples (seeded):
   *H and its standard error *se.  -1 (nothing written) without a known density. */
int ex_toy_entropy(ex_toy t, uint64_t seed, size_t n, double *H, double *se);

/* The exponentially scaled modified Bessel function e^{−z} I₀(z), z >= 0 (series
   below 20, the asymptotic expansion above; relative error ~1e-15). */
double ex_i0e(double z);

/* ---- point clouds in CSV ---------------------------------------------------------- */

/* Read path: a header line (its column count is D >= 1), then one point per row, D
   numbers separated by commas (blank lines skipped, a trailing CR ignored).  On
   success *x (malloc'd, n × D; the caller frees), *n >= 1 and *dim, return 0.  On a
   malformed file, a ragged row, an empty field, a non-number, NaN or Inf, no rows, or
   an I/O error: -1, nothing allocated, and msg (size msgsize) says "path:line: why". */
int ex_points_read_csv(const char *path, double **x, size_t *n, size_t *dim, char *msg,
                       size_t msgsize);

/* Write n × dim points with a header x1,...,xD.  0, or -1 (errno). */
int ex_points_write_csv(const char *path, const double *x, size_t n, size_t dim);

#endif /* EX_CNFDATA_H */
