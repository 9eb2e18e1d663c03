/* tableau.c — every method's Butcher tableau as static const data, with its dense-output
 * weights w(θ), dw(θ).  Sources: Hairer, Nørsett, Wanner, Solving ODEs I (2nd ed. 1993)
 * [HNW] Table II.1.1 (Euler, midpoint, RK4), Table II.5.2 (DOPRI5), Sec. II.6 (dense
 * output); Bogacki & Shampine, Appl. Math. Lett. 2 (1989) 321-325 (BS3); DOP853: the
 * coefficients of Hairer & Wanner's published dop853.f (HNW II.10). */
#include "internal.h"

#include <string.h>

/* ---- Hermite cubic dense output -------------------------------------------------
 * On f(t) = k_0 and f(t+h) = k_last with ynew = y + h Σ b_i k_i:
 *   y(t+θh) = y + h [ h01(θ) Σ b_i k_i + h10(θ) k_0 + h11(θ) k_last ],
 *   h01 = 3θ² - 2θ³, h10 = θ - 2θ² + θ³, h11 = θ³ - θ²  (so Σ w_i = θ). */
static void hermite(double th, const double *b, int s, int s_dense, int last,
                    double *w, double *dw)
{
    double h01 = th * th * (3 - 2 * th), h10 = th * (1 - th) * (1 - th), h11 = th * th * (th - 1);
    for (int i = 0; i < s_dense; i++)
        w[i] = i < s ? h01 * b[i] : 0;
    w[0] += h10;
    w[last] += h11;
    if (dw) {
        double d01 = 6 * th * (1 - th), d10 = (1 - th) * (1 - 3 * th), d11 = th * (3 * th - 2);
        for (int i = 0; i < s_dense; i++)
            dw[i] = i < s ? d01 * b[i] : 0;
        dw[0] += d10;
        dw[last] += d11;
    }
}

/* ---- Hairer's dense output (DOPRI5, DOP853) ------------------------------------
 * y(t+θh) = y + θ r2 + θθ'(r3 + θ(r4 + θ'(r5 + θ(r6 + θ'(r7 + θ r8))))), θ' = 1-θ,
 * r2 = h Σ b_i k_i, r3 = h k_0 - r2, r4 = r2 - h k_last - r3, r5.. = h Σ d_{m,i} k_i
 * (dopri5.f / dop853.f, CONTD5 / CONTD8).  Expanded, w_i = Σ_m p_m(θ) C_{m,i} with
 * p = θ, θθ', θ²θ', θ²θ'², θ³θ'², θ³θ'³, θ⁴θ'³ and C = b, δ_0 - b,
 * 2b - δ_0 - δ_last, d_1, d_2, ... */
static void hairer_dense(double th, const double *b, int s, int s_dense, int last,
                         const double *d, int nd, double *w, double *dw)
{
    double u = 1 - th;
    double p[7] = { th, th * u, th * th * u, th * th * u * u, th * th * th * u * u,
                    th * th * th * u * u * u, th * th * th * th * u * u * u };
    double q[7] = { 1, 1 - 2 * th, th * (2 - 3 * th), 2 * th * u * (1 - 2 * th),
                    th * th * u * (3 - 5 * th), 3 * th * th * u * u * (1 - 2 * th),
                    th * th * th * u * u * (4 - 7 * th) };
    for (int i = 0; i < s_dense; i++) {
        double bi = i < s ? b[i] : 0;
        double c1 = (i == 0) - bi, c2 = 2 * bi - (i == 0) - (i == last);
        double wi = p[0] * bi + p[1] * c1 + p[2] * c2, dwi = q[0] * bi + q[1] * c1 + q[2] * c2;
        for (int m = 0; m < nd; m++) {
            wi += p[3 + m] * d[m * s_dense + i];
            dwi += q[3 + m] * d[m * s_dense + i];
        }
        w[i] = wi;
        if (dw)
            dw[i] = dwi;
    }
}

/* ---- Euler (HNW Table II.1.1), + dense stage f(t+h, ynew) ------------------------ */
/* Fixed-step methods carry one extra stage (index s) whose A row equals b and c = 1:
   it is f(t+h, ynew), evaluated only when dense output needs it; the integrator reuses
   it as the next step's k_0. */
static const double euler_c[2] = { 0, 1 };
static const double euler_A[4] = { 0, 0,
                                   1, 0 };
static const double euler_b[1] = { 1 };
static void euler_dense(double th, double *w, double *dw) { hermite(th, euler_b, 1, 2, 1, w, dw); }

/* ---- explicit midpoint (HNW Table II.1.1, Runge 1895) ---------------------------- */
static const double midpoint_c[3] = { 0, 1.0 / 2, 1 };
static const double midpoint_A[9] = { 0,       0, 0,
                                      1.0 / 2, 0, 0,
                                      0,       1, 0 };
static const double midpoint_b[2] = { 0, 1 };
static void midpoint_dense(double th, double *w, double *dw) { hermite(th, midpoint_b, 2, 3, 2, w, dw); }

/* ---- classical Runge–Kutta (HNW Table II.1.1, Kutta 1901) ------------------------ */
static const double rk4_c[5] = { 0, 1.0 / 2, 1.0 / 2, 1, 1 };
static const double rk4_A[25] = { 0,       0,       0,       0,       0,
                                  1.0 / 2, 0,       0,       0,       0,
                                  0,       1.0 / 2, 0,       0,       0,
                                  0,       0,       1,       0,       0,
                                  1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6, 0 };
static const double rk4_b[4] = { 1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6 };
static void rk4_dense(double th, double *w, double *dw) { hermite(th, rk4_b, 4, 5, 4, w, dw); }

/* ---- Bogacki–Shampine 3(2), FSAL (Bogacki & Shampine 1989) ----------------------- */
static const double bosh3_c[4] = { 0, 1.0 / 2, 3.0 / 4, 1 };
static const double bosh3_A[16] = { 0,       0,       0,       0,
                                    1.0 / 2, 0,       0,       0,
                                    0,       3.0 / 4, 0,       0,
                                    2.0 / 9, 1.0 / 3, 4.0 / 9, 0 };
static const double bosh3_b[4] = { 2.0 / 9, 1.0 / 3, 4.0 / 9, 0 };
/* b - b̂ with b̂ = (7/24, 1/4, 1/3, 1/8). */
static const double bosh3_e[4] = { -5.0 / 72, 1.0 / 12, 1.0 / 9, -1.0 / 8 };
static void bosh3_dense(double th, double *w, double *dw) { hermite(th, bosh3_b, 4, 4, 3, w, dw); }

/* ---- Dormand–Prince 5(4), FSAL (HNW Table II.5.2) --------------------------------- */
static const double dopri5_c[7] = { 0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1 };
static const double dopri5_A[49] = {
    0, 0, 0, 0, 0, 0, 0,
    1.0 / 5, 0, 0, 0, 0, 0, 0,
    3.0 / 40, 9.0 / 40, 0, 0, 0, 0, 0,
    44.0 / 45, -56.0 / 15, 32.0 / 9, 0, 0, 0, 0,
    19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729, 0, 0, 0,
    9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656, 0, 0,
    35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0 };
static const double dopri5_b[7] = { 35.0 / 384, 0, 500.0 / 1113, 125.0 / 192,
                                    -2187.0 / 6784, 11.0 / 84, 0 };
/* b - b̂, b̂ = (5179/57600, 0, 7571/16695, 393/640, -92097/339200, 187/2100, 1/40). */
static const double dopri5_e[7] = { 71.0 / 57600, 0, -71.0 / 16695, 71.0 / 1920,
                                    -17253.0 / 339200, 22.0 / 525, -1.0 / 40 };
/* Shampine's 4th-order continuous extension as coded in Hairer's dopri5.f (HNW II.6). */
static const double dopri5_d[7] = { -12715105075.0 / 11282082432, 0,
                                    87487479700.0 / 32700410799, -10690763975.0 / 1880347072,
                                    701980252875.0 / 199316789632, -1453857185.0 / 822651844,
                                    69997945.0 / 29380423 };
static void dopri5_dense(double th, double *w, double *dw)
{
    hairer_dense(th, dopri5_b, 7, 7, 6, dopri5_d, 1, w, dw);
}

/* ---- DOP853: Dormand–Prince 8(5,3) with its 7th-order dense output ------------------
 * Coefficients as published in Hairer & Wanner's dop853.f (HNW I, Section II.10);
 * most are irrational (they involve √6) and are given there to 30 digits.  Stages
 * 0-11 form the step (c_11 = 1), stage 12 is the FSAL stage f(t+h, ynew) (A row = b),
 * stages 13-15 serve only the dense output. */
#define NS 16
#define A_(i, j) [(i) * NS + (j)]
#define DOP_B0  5.42937341165687622380535766363e-2
#define DOP_B5  4.45031289275240888144113950566e0
#define DOP_B6  1.89151789931450038304281599044e0
#define DOP_B7  -5.8012039600105847814672114227e0
#define DOP_B8  3.1116436695781989440891606237e-1
#define DOP_B9  -1.52160949662516078556178806805e-1
#define DOP_B10 2.01365400804030348374776537501e-1
#define DOP_B11 4.47106157277725905176885569043e-2

static const double dop853_c[NS] = {
    0, 0.526001519587677318785587544488e-01, 0.789002279381515978178381316732e-01,
    0.118350341907227396726757197510e+00, 0.281649658092772603273242802490e+00,
    1.0 / 3, 1.0 / 4, 4.0 / 13, 127.0 / 195, 3.0 / 5, 6.0 / 7, 1, 1,
    1.0 / 10, 1.0 / 5, 7.0 / 9 };

static const double dop853_A[NS * NS] = {
    A_(1, 0) = 5.26001519587677318785587544488e-2,
    A_(2, 0) = 1.97250569845378994544595329183e-2,
    A_(2, 1) = 5.91751709536136983633785987549e-2,
    A_(3, 0) = 2.95875854768068491816892993775e-2,
    A_(3, 2) = 8.87627564304205475450678981324e-2,
    A_(4, 0) = 2.41365134159266685502369798665e-1,
    A_(4, 2) = -8.84549479328286085344864962717e-1,
    A_(4, 3) = 9.24834003261792003115737966543e-1,
    A_(5, 0) = 3.7037037037037037037037037037e-2,
    A_(5, 3) = 1.70828608729473871279604482173e-1,
    A_(5, 4) = 1.25467687566822425016691814123e-1,
    A_(6, 0) = 3.7109375e-2,
    A_(6, 3) = 1.70252211019544039314978060272e-1,
    A_(6, 4) = 6.02165389804559606850219397283e-2,
    A_(6, 5) = -1.7578125e-2,
    A_(7, 0) = 3.70920001185047927108779319836e-2,
    A_(7, 3) = 1.70383925712239993810214054705e-1,
    A_(7, 4) = 1.07262030446373284651809199168e-1,
    A_(7, 5) = -1.53194377486244017527936158236e-2,
    A_(7, 6) = 8.27378916381402288758473766002e-3,
    A_(8, 0) = 6.24110958716075717114429577812e-1,
    A_(8, 3) = -3.36089262944694129406857109825e0,
    A_(8, 4) = -8.68219346841726006818189891453e-1,
    A_(8, 5) = 2.75920996994467083049415600797e1,
    A_(8, 6) = 2.01540675504778934086186788979e1,
    A_(8, 7) = -4.34898841810699588477366255144e1,
    A_(9, 0) = 4.77662536438264365890433908527e-1,
    A_(9, 3) = -2.48811461997166764192642586468e0,
    A_(9, 4) = -5.90290826836842996371446475743e-1,
    A_(9, 5) = 2.12300514481811942347288949897e1,
    A_(9, 6) = 1.52792336328824235832596922938e1,
    A_(9, 7) = -3.32882109689848629194453265587e1,
    A_(9, 8) = -2.03312017085086261358222928593e-2,
    A_(10, 0) = -9.3714243008598732571704021658e-1,
    A_(10, 3) = 5.18637242884406370830023853209e0,
    A_(10, 4) = 1.09143734899672957818500254654e0,
    A_(10, 5) = -8.14978701074692612513997267357e0,
    A_(10, 6) = -1.85200656599969598641566180701e1,
    A_(10, 7) = 2.27394870993505042818970056734e1,
    A_(10, 8) = 2.49360555267965238987089396762e0,
    A_(10, 9) = -3.0467644718982195003823669022e0,
    A_(11, 0) = 2.27331014751653820792359768449e0,
    A_(11, 3) = -1.05344954667372501984066689879e1,
    A_(11, 4) = -2.00087205822486249909675718444e0,
    A_(11, 5) = -1.79589318631187989172765950534e1,
    A_(11, 6) = 2.79488845294199600508499808837e1,
    A_(11, 7) = -2.85899827713502369474065508674e0,
    A_(11, 8) = -8.87285693353062954433549289258e0,
    A_(11, 9) = 1.23605671757943030647266201528e1,
    A_(11, 10) = 6.43392746015763530355970484046e-1,
    /* the FSAL stage: A row = b */
    A_(12, 0) = DOP_B0, A_(12, 5) = DOP_B5, A_(12, 6) = DOP_B6, A_(12, 7) = DOP_B7,
    A_(12, 8) = DOP_B8, A_(12, 9) = DOP_B9, A_(12, 10) = DOP_B10, A_(12, 11) = DOP_B11,
    /* dense-output stages */
    A_(13, 0) = 5.61675022830479523392909219681e-2,
    A_(13, 6) = 2.53500210216624811088794765333e-1,
    A_(13, 7) = -2.46239037470802489917441475441e-1,
    A_(13, 8) = -1.24191423263816360469010140626e-1,
    A_(13, 9) = 1.5329179827876569731206322685e-1,
    A_(13, 10) = 8.20105229563468988491666602057e-3,
    A_(13, 11) = 7.56789766054569976138603589584e-3,
    A_(13, 12) = -8.298e-3,
    A_(14, 0) = 3.18346481635021405060768473261e-2,
    A_(14, 5) = 2.83009096723667755288322961402e-2,
    A_(14, 6) = 5.35419883074385676223797384372e-2,
    A_(14, 7) = -5.49237485713909884646569340306e-2,
    A_(14, 10) = -1.08347328697249322858509316994e-4,
    A_(14, 11) = 3.82571090835658412954920192323e-4,
    A_(14, 12) = -3.40465008687404560802977114492e-4,
    A_(14, 13) = 1.41312443674632500278074618366e-1,
    A_(15, 0) = -4.28896301583791923408573538692e-1,
    A_(15, 5) = -4.69762141536116384314449447206e0,
    A_(15, 6) = 7.68342119606259904184240953878e0,
    A_(15, 7) = 4.06898981839711007970213554331e0,
    A_(15, 8) = 3.56727187455281109270669543021e-1,
    A_(15, 12) = -1.39902416515901462129418009734e-3,
    A_(15, 13) = 2.9475147891527723389556272149e0,
    A_(15, 14) = -9.15095847217987001081870187138e0,
};

static const double dop853_b[13] = { DOP_B0, 0, 0, 0, 0, DOP_B5, DOP_B6, DOP_B7,
                                     DOP_B8, DOP_B9, DOP_B10, DOP_B11, 0 };
/* 5th-order error weights (ER1..ER12 of dop853.f). */
static const double dop853_e[13] = {
    0.1312004499419488073250102996e-01, 0, 0, 0, 0,
    -0.1225156446376204440720569753e+01, -0.4957589496572501915214079952e+00,
    0.1664377182454986536961530415e+01, -0.3503288487499736816886487290e+00,
    0.3341791187130174790297318841e+00, 0.8192320648511571246570742613e-01,
    -0.2235530786388629525884427845e-01, 0 };
/* b - b̂₃ with the 3rd-order weights BHH1 = 31/127 (stage 0), BHH2 (stage 8),
   BHH3 = 3/136 (stage 11) of dop853.f. */
static const double dop853_e3[13] = {
    DOP_B0 - 0.244094488188976377952755905512e+00, 0, 0, 0, 0, DOP_B5, DOP_B6, DOP_B7,
    DOP_B8 - 0.733846688281611857341361741547e+00, DOP_B9, DOP_B10,
    DOP_B11 - 0.220588235294117647058823529412e-01, 0 };
/* D4*, D5*, D6*, D7* of dop853.f: the 7th-order continuous extension. */
static const double dop853_d[4 * NS] = {
    [0 * NS + 0] = -0.84289382761090128651353491142e+01,
    [0 * NS + 5] = 0.56671495351937776962531783590e+00,
    [0 * NS + 6] = -0.30689499459498916912797304727e+01,
    [0 * NS + 7] = 0.23846676565120698287728149680e+01,
    [0 * NS + 8] = 0.21170345824450282767155149946e+01,
    [0 * NS + 9] = -0.87139158377797299206789907490e+00,
    [0 * NS + 10] = 0.22404374302607882758541771650e+01,
    [0 * NS + 11] = 0.63157877876946881815570249290e+00,
    [0 * NS + 12] = -0.88990336451333310820698117400e-01,
    [0 * NS + 13] = 0.18148505520854727256656404962e+02,
    [0 * NS + 14] = -0.91946323924783554000451984436e+01,
    [0 * NS + 15] = -0.44360363875948939664310572000e+01,
    [1 * NS + 0] = 0.10427508642579134603413151009e+02,
    [1 * NS + 5] = 0.24228349177525818288430175319e+03,
    [1 * NS + 6] = 0.16520045171727028198505394887e+03,
    [1 * NS + 7] = -0.37454675472269020279518312152e+03,
    [1 * NS + 8] = -0.22113666853125306036270938578e+02,
    [1 * NS + 9] = 0.77334326684722638389603898808e+01,
    [1 * NS + 10] = -0.30674084731089398182061213626e+02,
    [1 * NS + 11] = -0.93321305264302278729567221706e+01,
    [1 * NS + 12] = 0.15697238121770843886131091075e+02,
    [1 * NS + 13] = -0.31139403219565177677282850411e+02,
    [1 * NS + 14] = -0.93529243588444783865713862664e+01,
    [1 * NS + 15] = 0.35816841486394083752465898540e+02,
    [2 * NS + 0] = 0.19985053242002433820987653617e+02,
    [2 * NS + 5] = -0.38703730874935176555105901742e+03,
    [2 * NS + 6] = -0.18917813819516756882830838328e+03,
    [2 * NS + 7] = 0.52780815920542364900561016686e+03,
    [2 * NS + 8] = -0.11573902539959630126141871134e+02,
    [2 * NS + 9] = 0.68812326946963000169666922661e+01,
    [2 * NS + 10] = -0.10006050966910838403183860980e+01,
    [2 * NS + 11] = 0.77771377980534432092869265740e+00,
    [2 * NS + 12] = -0.27782057523535084065932004339e+01,
    [2 * NS + 13] = -0.60196695231264120758267380846e+02,
    [2 * NS + 14] = 0.84320405506677161018159903784e+02,
    [2 * NS + 15] = 0.11992291136182789328035130030e+02,
    [3 * NS + 0] = -0.25693933462703749003312586129e+02,
    [3 * NS + 5] = -0.15418974869023643374053993627e+03,
    [3 * NS + 6] = -0.23152937917604549567536039109e+03,
    [3 * NS + 7] = 0.35763911791061412378285349910e+03,
    [3 * NS + 8] = 0.93405324183624310003907691704e+02,
    [3 * NS + 9] = -0.37458323136451633156875139351e+02,
    [3 * NS + 10] = 0.10409964950896230045147246184e+03,
    [3 * NS + 11] = 0.29840293426660503123344363579e+02,
    [3 * NS + 12] = -0.43533456590011143754432175058e+02,
    [3 * NS + 13] = 0.96324553959188282948394950600e+02,
    [3 * NS + 14] = -0.39177261675615439165231486172e+02,
    [3 * NS + 15] = -0.14972683625798562581422125276e+03,
};
static void dop853_dense(double th, double *w, double *dw)
{
    hairer_dense(th, dop853_b, 13, NS, 12, dop853_d, 4, w, dw);
}
#undef A_
#undef NS

/* ---- the registry ------------------------------------------------------------------
 * One entry per method holds every fact about it: names, tableau, orders, FSAL, dense
 * output and step-size control.  The controller constants were chosen on the 25
 * non-stiff DETEST problems (Hull et al. 1972) against SciPy's solvers at equal error
 * (bench/bench_detest.c, bench/peers/detest_sweep.py, data in bench/data/; README,
 * "Step-size control"):
 *   bosh3  safety 0.9, β = 0, facmin 0.2, facmax 10: SciPy's RK23 constants — no β > 0
 *          did better on the set, and with them bosh3 takes RK23's steps;
 *   dopri5 safety 0.85, β = 0.02 (a light PI term), facmin 0.2, facmax 10: 3 % fewer
 *          evaluations than RK45 at equal error (safety 0.9, β = 0.04 of dopri5.f: 2 %);
 *   dop853 safety 0.75, β = 0, facmin 0.333, facmax 10: 7 % fewer than SciPy's DOP853
 *          at equal error, rejected steps 19 % -> 8 % (dop853.f's safety 0.9, facmax 6:
 *          0.4 % fewer); β >= 0.04 hurt the orbit problems.
 * q: err ~ h^(err_order + 1), and DOP853's combined estimate
 * e5²/sqrt(e5² + 0.01 e3²) ~ h^12/h^4 = h^8 (dop853.f's exponent 1/8). */

static const node__tableau tableaus[] = {
    { .name = "euler", .method = NODE_EULER, .s = 1, .s_dense = 2, .order = 1,
      .c = euler_c, .A = euler_A, .b = euler_b, .dense = euler_dense, .dense_order = 1 },
    { .name = "midpoint", .method = NODE_MIDPOINT, .s = 2, .s_dense = 3, .order = 2,
      .c = midpoint_c, .A = midpoint_A, .b = midpoint_b, .dense = midpoint_dense,
      .dense_order = 2 },
    { .name = "rk4", .method = NODE_RK4, .s = 4, .s_dense = 5, .order = 4,
      .c = rk4_c, .A = rk4_A, .b = rk4_b, .dense = rk4_dense, .dense_order = 3 },
    { .name = "bosh3", .aliases = { "bs3" }, .method = NODE_BOSH3,
      .s = 4, .s_dense = 4, .order = 3, .err_order = 2, .fsal = 1,
      .c = bosh3_c, .A = bosh3_A, .b = bosh3_b, .e = bosh3_e,
      .dense = bosh3_dense, .dense_order = 3,
      .ctl = { .safety = 0.9, .beta = 0, .facmin = 0.2, .facmax = 10, .q = 3 } },
    { .name = "dopri5", .aliases = { "rk45" }, .method = NODE_DOPRI5,
      .s = 7, .s_dense = 7, .order = 5, .err_order = 4, .fsal = 1,
      .c = dopri5_c, .A = dopri5_A, .b = dopri5_b, .e = dopri5_e,
      .dense = dopri5_dense, .dense_order = 4,
      .ctl = { .safety = 0.85, .beta = 0.02, .facmin = 0.2, .facmax = 10, .q = 5 } },
    { .name = "dop853", .aliases = { "dp853", "dopri8" }, .method = NODE_DOP853,
      .s = 13, .s_dense = 16, .order = 8, .err_order = 5, .fsal = 1,
      .c = dop853_c, .A = dop853_A, .b = dop853_b, .e = dop853_e, .e3 = dop853_e3,
      .dense = dop853_dense, .dense_order = 7,
      .ctl = { .safety = 0.75, .beta = 0, .facmin = 0.333, .facmax = 10, .q = 8 } },
};

#define NTABLEAUS (sizeof tableaus / sizeof tableaus[0])

const node__tableau *node__tableau_get(node_method m)
{
    for (size_t i = 0; i < NTABLEAUS; i++)
        if (tableaus[i].method == m)
            return &tableaus[i];
    return NULL;
}

size_t node__tableau_count(void) { return NTABLEAUS; }

const node__tableau *node__tableau_at(size_t i) { return i < NTABLEAUS ? &tableaus[i] : NULL; }
