#!/usr/bin/python3
"""mutate.py -- mutation testing of the behaviours the README advertises.

Each mutant below is one deliberate break of an advertised behaviour: a small edit of
one source file.  The script copies the working tree to a scratch folder, builds the
tests once, then for each mutant applies the edit, rebuilds (incrementally), runs the
whole ctest suite and restores the file.  A mutant is KILLED when at least one test
fails, and SURVIVES when every test passes -- a behaviour no test would notice losing.
The score (killed / all) belongs at 100 %; the README reports it.

    /usr/bin/python3 tests/mutate.py               # every mutant
    /usr/bin/python3 tests/mutate.py --list        # what they are
    /usr/bin/python3 tests/mutate.py --only seminorm-ignored,no-step-carry
    /usr/bin/python3 tests/mutate.py --jobs 4 --keep /tmp/mut   # keep the scratch tree

Exit status: 0 if every mutant was killed, 1 if any survived, 2 if a mutant no longer
applies (its snippet must occur exactly once: update the list when the code moves) or
the unmutated tree does not build or pass.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, file, snippet, replacement, the advertised behaviour it breaks); snippet and
# replacement may be tuples of the same length for a mutant made of several edits.
MUTANTS = [
    # ---- the five breaks of issue #9 ----
    ("seminorm-ignored", "src/grad/adjoint.c",
     "node__grad_norm nc = { n, n, np, ntb, o.seminorm };",
     "node__grad_norm nc = { n, n, np, ntb, 0 };",
     "opt.seminorm leaves the dL/dθ and dL/dt blocks out of the backward error norm"),
    ("no-step-carry", "src/grad/adjoint.c",
     "            bo.step = s->h_next;",
     "            bo.step = 0;",
     "each backward interval starts with the step the controller planned"),
    ("growth-after-reject", "src/ode/control.c",
     "    if (c->rejected && fac > 1)          /* no growth right after a rejection */\n"
     "        fac = 1;",
     "",
     "no step growth right after a rejected step"),
    ("dopri5-beta-0", "src/ode/tableau.c",
     ".ctl = { .safety = 0.85, .beta = 0.02,",
     ".ctl = { .safety = 0.85, .beta = 0,",
     "DOPRI5's PI controller (β = 0.02)"),
    ("dop853-5th-order-error", "src/ode/ode.h",
     "    return den > 0 ? e5 * e5 / sqrt(den) : 0;",
     "    return e5;",
     "DOP853's combined 5th/3rd-order error estimate"),
    # ---- solver core ----
    ("no-fsal", "src/ode/solve.c",
     "    if (r->sw >= 0 && (tab->fsal || r->dense_ready)) {",
     "    if (0) {",
     "FSAL: the last stage of a step is the first of the next"),
    ("max-step-ignored", "src/ode/solve.c",
     "        if (fabs(h) > hmax)\n            h = r->dir * hmax;",
     "",
     "opt.max_step bounds every step"),
    ("dopri5-hermite-dense", "src/ode/tableau.c",
     "    hairer_dense(th, dopri5_b, 7, 7, 6, dopri5_d, 1, w, dw);",
     "    hermite(th, dopri5_b, 7, 7, 6, w, dw);",
     "DOPRI5's dense output is Shampine's 4th-order extension"),
    ("no-nonfinite-retry", "src/ode/solve.c",
     "            h *= 0.25;",
     "            return NODE_ENONFINITE;",
     "a NaN/Inf from f makes an adaptive method retry with smaller steps"),
    ("norm-old-y-only", "src/ode/kernels.c",
     "    double sk = atol + rtol * (a > b ? a : b);   /* as node__norm_rms forms it */",
     "    double sk = atol + rtol * a;",
     "the error scale uses max(|y_i|, |ynew_i|)"),
    ("dense-nan-unchecked", "src/ode/solve.c",
     "            if (nonfinite_row(row, r->dim)) {",
     "            if (0) {",
     "no NaN/Inf output row comes back with NODE_OK (dense-only stages)"),
    # ---- gradients ----
    ("adjoint-budget-per-interval", "src/grad/adjoint.c",
     "        bo.max_steps = o.max_steps - stats->nsteps;",
     "        bo.max_steps = o.max_steps;",
     "max_steps is one budget for all of the adjoint's backward intervals"),
    ("backprop-nan-unchecked", "src/grad/backprop.c",
     "    if (np && node__nonfinite(dLdp, np))\n        return nonfinite_output(",
     "    if (0)\n        return nonfinite_output(",
     "exact backprop never returns NODE_OK with a NaN gradient"),
    ("ckpt-stale-fsal", "src/grad/backprop.c",
     "            memcpy(k[0], k[tab->s - 1], n * sizeof(double));\n",
     "",
     "checkpointed backprop rebuilds each segment as the forward pass stepped (FSAL)"),
    ("ckpt-keep-odd-slots", "src/grad/backprop.c",
     "        for (size_t c = 0; c < r->nsaved; c += 2, keep++)",
     "        for (size_t c = 1; c < r->nsaved; c += 2, keep++)",
     "checkpointed backprop keeps the states at multiples of the doubled stride"),
    ("interp-z-step-start", "src/grad/adjoint_interp.c",
     "    node__rk_combine(kern, n, rec + 2, h, w, (int)g->S, k, z);",
     "    memcpy(z, rec + 2, n * sizeof(double));",
     "the interpolating adjoint reads z(t) from the forward re-solve's dense output"),
    # ---- training ----
    ("adam-no-bias-correction", "src/train/optim.c",
     "    const double bc1 = 1.0 - pow(b1, (double)t);",
     "    const double bc1 = 1.0;",
     "Adam's bias corrections (PyTorch's update rule)"),
    ("optim-writes-nonfinite", "src/train/optim.c",
     "        if ((ok = step_adam(o, theta, grad, t, false)))",
     "        if ((ok = 1))",
     "node_optim_step refuses a step that would write NaN/Inf"),
    ("loss-nan-target-accepted", "src/train/loss.c",
     "    if (!isfinite(sum))\n        return node__err_end(err, refuse(",
     "    if (0)\n        return node__err_end(err, refuse(",
     "a NaN target at an observed entry is refused"),
    # ---- the MLP and its files ----
    ("systems-share-a-workspace", "src/nn/mlp.c",
     "    s->m->kern->pass(s->m, s->ws.buf, s->batch, t, y, a, dydt, vjp_y, vjp_p, vjp_t);",
     "    s->m->kern->pass(s->m, s->m->ws.buf, s->batch, t, y, a, dydt, vjp_y, vjp_p, vjp_t);",
     "every system of one model has its own workspace (threads)"),
    ("init-bound", "src/nn/mlp.c",
     "        double bound = 1.0 / sqrt((double)m->fan_in[k]);",
     "        double bound = 1.0 / (double)m->fan_in[k];",
     "node_mlp_init draws PyTorch's U(±1/√fan_in)"),
    ("tanh-second-derivative-sign", "src/nn/act.c",
     "        zdd[i] = -2.0 * y[i] * d[i];",
     "        zdd[i] = 2.0 * y[i] * d[i];",
     "tanh'' = -2 tanh tanh' (the divergence's gradient needs every act'')"),
    # ---- activations at full accuracy (issue #16; tests/test_act_accuracy.c) ----
    ("act-quotient-uncorrected", "src/nn/vmath.h",
     "    return NODE__FMA(NODE__FMA(-y, den_err, rho), qq, y);",
     "    return y;",
     "tanh, sigmoid and SiLU within 2 ulp: their quotients get one Newton correction"),
    ("tanh-derivative-flushed-past-20", "src/nn/vmath.h",
     "    *d = ax > 354.0 ? 0.0 : NODE__FMA(-q4, q, q4);        /* 4 q (1 - q) */",
     "    *d = ax > 20.0 ? 0.0 : NODE__FMA(-q4, q, q4);        /* 4 q (1 - q) */",
     "tanh' = 4q(1 - q) keeps its relative accuracy out to |x| = 354"),
    ("elu-derivative-from-expm1", "src/nn/act.c",
     "            d[i] = z > 0.0 ? 1.0 : ez;",
     "            d[i] = z > 0.0 ? 1.0 : em1 + 1.0;",
     "ELU' = e^z to a few ulp (not expm1 + 1, which loses its digits below z = -1)"),
    ("div-vjp-drops-second-derivative", "src/nn/div.c",
     "                    pr[c] = NODE__FMA(sr[c], s, dr[c] * pr[c]);",
     "                    pr[c] = dr[c] * pr[c];",
     "node_mlp_div_vjp carries act''(z) ż through the reverse pass"),
    ("div-vjp-tangent-bias-gradient", "src/nn/div.c",
     "                node__layer_bwd_w(O, I, TB, ldt, Q, Xdk, gW, w.gbd, w.scratch, 1);",
     "                node__layer_bwd_w(O, I, TB, ldt, Q, Xdk, gW, gW + O * I, w.scratch, 1);",
     "the tangents' cotangents reach W̄ only, never b̄ (tangents carry no bias)"),
    ("crc-unchecked", "src/nn/io.c",
     "    if (node__get_u32(c) != crc)",
     "    if (0)",
     "model files are checked against their CRC-32"),
    ("load-accepts-any-file", "src/nn/fileio.c",
     ("    if (!S_ISREG(sb.st_mode))\n        return not_regular(msg, path, sb.st_mode);",
      "    else if (!S_ISREG(sb.st_mode))\n        st = not_regular(msg, path, sb.st_mode);"),
     ("", "    else if (0)\n        st = not_regular(msg, path, sb.st_mode);"),
     "node_mlp_load accepts only a regular file (no FIFO or device)"),
    ("save-unlocked", "src/nn/fileio.c",
     "    memset(&fl, 0, sizeof fl);   /* whole file; l_pid 0, as OFD locks require */",
     "    return 0;\n    memset(&fl, 0, sizeof fl);",
     "concurrent saves never write the same temporary file"),
    ("save-drops-permissions", "src/nn/fileio.c",
     "        if (fchmod(fd, ps.st_mode & 0777) != 0)",
     "        if (0)",
     "a save keeps the permissions of the file it replaces"),
    ("save-not-flushed", "src/nn/fileio.c",
     "    if (st == NODE_OK && fsync(fd) != 0)",
     "    if (0)",
     "a save flushes the new file to disk before the rename"),
    ("mask-ignored", "src/train/loss.c",
     "    return (!mask || mask[i]) && !(nan_missing && isnan(target[i]));",
     "    return !(nan_missing && isnan(target[i]));",
     "losses average over the observed (mask != 0) entries only"),
    # ---- time-series primitives ----
    ("rnn-masked-row-forgets", "src/seq/rnn.c",
     "                    memcpy(hk1 + b * nh, hk + b * nh, nh * sizeof(double));",
     "                    memset(hk1 + b * nh, 0, nh * sizeof(double));",
     "a row not observed at step k keeps its hidden state (node_rnn_forward's mask)"),
    ("gru-reset-gate-ignored", "src/seq/rnn.c",
     "        P[i] = Axn[i] + RZ[i] * Ahn[i];    /* (P's r rows are spent: reuse them) */",
     "        P[i] = Axn[i] + Ahn[i];    /* (P's r rows are spent: reuse them) */",
     "the GRU's candidate state reads W_hn h through the reset gate (torch.nn.GRUCell)"),
    ("gru-carry-gradient-dropped", "src/seq/rnn.c",
     "            N[i] = g * u;",
     "            N[i] = 0.0;",
     "the GRU's backward carries dL/dh' through u * h to dL/dh"),
    ("latent-file-forgets-cell", "src/seq/latent_io.c",
     "    node__put_u32(b + 12, (uint32_t)m->cfg.rnn_cell);",
     "    node__put_u32(b + 12, (uint32_t)NODE_CELL_TANH);",
     "a latent ODE model file records its encoder's cell kind"),
    ("latent-val-keeps-last", "examples/util/latent_fit.c",
     "    if (V && best_iter > 0)\n        memcpy(theta, best, P * sizeof *theta);",
     "    if (V && best_iter < 0)\n        memcpy(theta, best, P * sizeof *theta);",
     "latent_ode --val ends training on the best validated parameters"),
    ("latent-val-first-is-best", "examples/util/latent_fit.c",
     "    if (rc == 0 && r.rmse_pred < *best_rmse) {",
     "    if (rc == 0 && *best_rmse == INFINITY) {",
     "latent_ode --val keeps the parameters with the lowest validation RMSE"),
    ("enc-drop-empties-series", "examples/util/latent_fit.c",
     "        if (kept == 0 && last < nt)",
     "        if (kept == 0 && last > nt)",
     "latent_ode --enc-drop leaves every series at least one point for its encoder"),
    ("refine-sees-future", "examples/util/latent_fit.c",
     "                  node_latent_loss(m, solver, 1, bt.nt, bt.ts, bt.xs, bt.enc, bt.enc, NULL, opt,",
     "                  node_latent_loss(m, solver, 1, bt.nt, bt.ts, bt.xs, bt.enc, bt.mask, NULL, opt,",
     "latent_ode --refine fits each test series' observed points only"),
    ("refine-moves-logvar", "examples/util/latent_fit.c",
     "    const size_t bmu = P - nf - ng - 2 * L;",
     "    const size_t bmu = P - nf - ng - L;",
     "latent_ode --refine moves the mean of q(z0 | x)"),
    ("kl-logvar-gradient", "src/seq/dist.c",
     "            dlogvar[i] = 0.5 * expm1(logvar[i]);",
     "            dlogvar[i] = 0.5 * exp(logvar[i]);",
     "node_kl_normal's gradient in the log-variance, (exp(v) - 1) / 2"),
    ("union-mask-all-observed", "src/seq/tseries.c",
     "                mask[k * nsel + b] = 0;",
     "                mask[k * nsel + b] = 1;",
     "a union batch masks each series to its own times"),
    # ---- the latent ODE ----
    ("latent-gap-ignored", "src/seq/latent_loss.c",
     "            row[D] = isnan(s->tnext[b]) ? 0.0 : s->tnext[b] - ts[i];",
     "            row[D] = 0.0;",
     "the encoder reads [x_i, t_next - t_i]"),
    ("latent-obs-mask-ignored", "src/seq/latent_loss.c",
     "        memset(sc.omask + r * D, obs_mask[r] != 0, D);",
     "        memset(sc.omask + r * D, 1, D);",
     "the likelihood counts only obs_mask entries (union batches)"),
    ("latent-sigma-gradient", "src/seq/latent_loss.c",
     "                    glv[j] += dz[j] * eps[b * L + j] * 0.5 * exp(0.5 * lv[j]);",
     "                    glv[j] += dz[j] * eps[b * L + j] * 0.5 * exp(lv[j]);",
     "the gradient goes through z0 = mu + exp(logvar/2) eps"),
    ("latent-dhs-left-dirty", "src/seq/latent_loss.c",
     "        memset(dhT, 0, B * H * sizeof(double));   /* m->dhs is zero again */",
     "",
     "a call leaves nothing in the workspaces that a later call would read"),
    ("latent-backprop-reruns", "src/seq/latent_loss.c",
     "        orec.record = 1;",
     "        orec.record = 0;",
     "the latent ODE's exact backprop reverses the forward solve's recording (no re-run)"),
    ("ens-default-group-64", "src/ode/ens_api.c",
     "#define NODE__ENS_GROUP_MAX 256",
     "#define NODE__ENS_GROUP_MAX 64",
     "an ensemble's default group is 256 samples for a small state"),
    ("latent-crc-unchecked", "src/seq/latent_io.c",
     "        if (st == NODE_OK && node__get_u32(c) != want)",
     "        if (st == NODE_OK && node__get_u32(c) != want && 0)",
     "latent ODE files are checked against their CRC-32"),
    # ---- continuous normalizing flows ----
    ("cnf-dlogp-sign", "src/cnf/cnf.c",
     "        dydt[r * (D + 1) + D] = -div[r];",
     "        dydt[r * (D + 1) + D] = div[r];",
     "the CNF carries d log p/dt = -tr(df/dz) (instantaneous change of variables)"),
    ("cnf-div-cotangent-sign", "src/cnf/cnf.c",
     "        c->bb[r] = -a[r * (D + 1) + D];",
     "        c->bb[r] = a[r * (D + 1) + D];",
     "the CNF's gradient goes through -div (div_vjp's b = -adjoint of log p)"),
    ("cnf-probe-not-reused", "src/cnf/cnf.c",
     "    make_system(c, B, c->last_probe ? c->eps : NULL, &sys);",
     "    if (c->last_probe)\n        draw_probe(c, B);\n"
     "    make_system(c, B, c->last_probe ? c->eps : NULL, &sys);",
     "a Hutchinson gradient uses the probe of its forward solve"),
    # ---- events ----
    ("event-direction-flipped", "src/event/event.c",
     "    return rising == (S->ev->direction > 0);",
     "    return rising != (S->ev->direction > 0);",
     "the event direction filter keeps rising (+1) or falling (-1) crossings in increasing t"),
    ("event-ift-sign", "src/event/event.c",
     "    double mu = -dLf / dgdt;",
     "    double mu = dLf / dgdt;",
     "the gradient through the event time: mu = -(dL/dt_e + dL/dy_e f) / (dg/dt)"),
    ("event-touch-kept", "src/event/event.c",
     "    if (snew == S->ref) {            /* no crossing (or a touch of 0 at a step end) */\n"
     "        S->pending = false;",
     "    if (snew == S->ref) {            /* no crossing (or a touch of 0 at a step end) */",
     "g touching zero at a step end without crossing is no event"),
    # ---- the examples' IDX reader (examples/util/gunzip.c, tests/test_idx.c) ----
    ("idx-crc-ignored", "examples/util/gunzip.c",
     "        if (crc != want_crc) {",
     "        if (0) {",
     "the IDX reader refuses a gzip member whose CRC-32 does not match"),
    ("idx-overlap-memmove", "examples/util/gunzip.c",
     "        for (size_t i = 0; i < len; i++)   /* byte by byte: the copy may overlap */\n"
     "            o[i] = from[i];",
     "        memmove(o, from, len);",
     "inflate copies an overlapping match byte by byte (a run, distance < length)"),
    # ---- planar flows (issue #11) ----
    ("planar-div-second-derivative", "src/cnf/planar_kern.c",
     "                g[c] = -2.0 * bs[c] * cm[c] * h[c];",
     "                g[c] = 2.0 * bs[c] * cm[c] * h[c];",
     "the planar CNF's divergence VJP uses tanh'' = -2 tanh tanh'"),
    ("planar-trace-weight-gradient", "src/cnf/planar_kern.c",
     "                lanes_add(lS + m * 8, bs, h1);",
     "                (void)0;",
     "the planar CNF's exact-trace gradient includes d(u_m . w_m)/d(u_m, w_m)"),
    ("backprop-record-stages-dropped", "src/grad/backprop.c",
     "        memcpy(rec + 2 + (i + 1) * n, k[i], n * sizeof(double));",
     "        (void)k;",
     "backprop's recorded stages are the ones its reverse pass uses"),
    ("backprop-fsal-cotangent-dropped", "src/grad/backprop.c",
     "            axpy(n, 1.0, c->kc, kb[tab->s - 1]);",
     "            (void)0;",
     "backprop's one vjp for a step's FSAL stage and the next step's k_0 carries both "
     "cotangents"),
    ("backprop-fsal-stale-k0", "src/grad/backprop.c",
     "                memcpy(c->kf, k[0], n * sizeof(double));",
     "                (void)0;",
     "backprop's recomputed stages take the FSAL stage from the next step's k_0"),
    ("record-rows-not-compared", "src/grad/backprop.c",
     "    return memcmp(ys, yf, nt * sys->dim * sizeof(double)) == 0 &&",
     "    return",
     "opt->record: backprop reverses the recording only for the rows that solve wrote"),
    ("planar-gate-gradient", "src/cnf/planar.c",
     "        dG[i] = dui * p->u[i] * (1.0 - sg);",
     "        dG[i] = 0;",
     "the planar CNF's gradient goes through the gates u = U sigmoid(G)"),
    ("planar-nf-no-invertibility-fix", "src/cnf/planar_nf.c",
     ("            double c = (softplus(wu) - 1.0 - wu) / ww;",
      "            f->mu[k] = softplus(wu) - 1.0;"),
     ("            double c = 0;",
      "            f->mu[k] = wu;"),
     "every planar NF layer is invertible (u-hat of Rezende & Mohamed's appendix A)"),
    # ---- the CNF example's data (examples/util/cnfdata.c; test_cnfdata) ----
    ("circles-density-sigma", "examples/util/cnfdata.c",
     "    const double s2 = CIRCLES_NOISE * CIRCLES_NOISE, rho = hypot(x[0], x[1]);",
     "    const double s2 = 1.1 * CIRCLES_NOISE * CIRCLES_NOISE, rho = hypot(x[0], x[1]);",
     "the two circles' exact density (the entropy beside the CNF's test NLL)"),
    ("checkerboard-sampler-shift", "examples/util/cnfdata.c",
     "    x2 += fmod(floor(x1) + 2, 2.0);",
     "    x2 += fmod(floor(x1) + 3, 2.0);",
     "the checkerboard sampler draws from its density"),
    # ---- the latent-ODE example's spirals (examples/util/tsdata.c; test_tsdata) ----
    ("train-extra-shares-stream", "examples/util/tsdata.c",
     "                node_rng_permutation(&rng_extra, E, pe);",
     "                node_rng_permutation(&rng, E, pe);",
     "--train-extra leaves every window (training and test) as it is without it"),
    ("train-extra-dropped", "examples/util/tsdata.c",
     "            if (train_extra > 0) {",
     "            if (train_extra > 1000) {",
     "--train-extra appends the points after a training window"),
    # ---- networks of layers (net.h) ----
    ("net-groupnorm-mean-term", "src/net/pass.c",
     "                    dx[cc * HW + p] = rs * (gc * dy[cc * HW + p] - m1 - xh * m2);",
     "                    dx[cc * HW + p] = rs * (gc * dy[cc * HW + p] - xh * m2);",
     "group norm's input gradient subtracts the mean of dx̂ over its group"),
    ("net-time-channel-sign", "src/net/pass.c",
     "                        gt += plane[(y + pad) * Wp + pad + x];",
     "                        gt -= plane[(y + pad) * Wp + pad + x];",
     "a conv2d's time channel (ConcatConv2d) feeds vjp_t"),
    ("net-thread-gradients-dropped", "src/net/net.c",
     "            vjp_p[i] += n->jobs[id].gp[i];",
     "            vjp_p[i] += 0.0 * n->jobs[id].gp[i];",
     "the parameter gradient sums every thread's share of the batch"),
    # ---- data-parallel training over MPI (examples/spiral_mpi.c; test_spiral_mpi) ----
    # (built with the examples; skipped, not counted, where CMake finds no MPI)
    ("mpi-shard-unweighted", "examples/spiral_mpi.c",
     "    const double w = (double)b / (double)B;",
     "    const double w = 1.0;",
     "P ranks train as one process with the global batch (the mean loss)"),
    ("mpi-shard-offset", "examples/spiral_mpi.c",
     "ex_spiral_windows(ytrue, T, b, pick + lo, by, by0);",
     "ex_spiral_windows(ytrue, T, b, pick, by, by0);",
     "each rank solves its own contiguous shard of the batch"),
    ("mpi-no-allreduce", "examples/spiral_mpi.c",
     "        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);",
     "        (void)buf;",
     "the ranks' gradients are summed (every rank takes the same step)"),
    # ---- ensembles (ensemble.h) ----
    ("ens-no-fsal-handover", "src/ode/ensemble.c",
     "        swap = g->k[0]; g->k[0] = g->k[tab->s - 1]; g->k[tab->s - 1] = swap;",
     "",
     "an ensemble sample steps as node_odeint steps it alone (FSAL handed on per row)"),
    ("ens-failure-spreads", "src/ode/ensemble.c",
     "            rc[q] = sys->f(sys->ctx, g->worker, 1, t + q, y + q * dim, out + q * dim);",
     "            rc[q] = c;",
     "a sample whose f fails leaves the others of its batched call intact"),
    ("ens-adjoint-param-sign", "src/ode/ens_adjoint.c",
     "                        aa[x - d] = -h * tab->b[i] * v;",
     "                        aa[x - d] = h * tab->b[i] * v;",
     "the ensemble adjoint's dL/dθ = -∫ aᵀ∂f/∂θ dt"),
    ("net-gn-stored-stats-swapped", "src/net/pass.c",
     "            stat[2 * (s * op->groups + g)] = mu;",
     "            stat[2 * (s * op->groups + g)] = rs;",
     "a group norm's reverse pass uses the mean and 1/σ its forward pass stored"),
    ("net-vjp-reuse-ignores-theta", "src/net/net.c",
     "        && memcmp(n->last_theta, n->theta, n->nparams * sizeof *n->theta) == 0;",
     "        && 1;",
     "a vjp reuses the latest forward's activations only while θ is unchanged"),
    ("net-time-weights-gradient-at-t0", "src/net/pass.c",
     "            im2col(op, in + s0 * op->in_size, nb, t, sc->X, sc->plane);\n"
     "            n->nn->layer_bwd_w",
     "            im2col(op, in + s0 * op->in_size, nb, 0.0, sc->X, sc->plane);\n"
     "            n->nn->layer_bwd_w",
     "the ODE block's time-channel weights get aᵀ∂f/∂w at the solve's t"),
    # ---- the MLP's fused kernels (src/nn/kernels.c, pass.c; test_mlp_kern) ----
    ("mlp-narrow-input-grad-no-act-prime", "src/nn/kernels.c",
     "o[l] = acc * mr[l];",
     "o[l] = acc;",
     "a narrow layer's input gradient carries act' of the layer below (fused in its stores)"),
    ("mlp-short-batch-padding-unmasked", "src/nn/kernels.c",
     "mk[l] = 8 * (NV - 1) + (size_t)l < B ? ~(uint64_t)0 : 0;",
     "mk[l] = ~(uint64_t)0;",
     "a short batch's weight gradient sums its samples only, whatever the padding holds"),
    ("mlp-row-block-act-prime-misplaced", "src/nn/pass.c",
     "node__act_kernels[ix](n * ld, Y + o0 * ld, want_d ? D + o0 * ld : NULL);",
     "node__act_kernels[ix](n * ld, Y + o0 * ld, want_d ? D : NULL);",
     "each block of a layer's rows keeps its own act' for the reverse pass"),
]

# Mutants of the MPI example: the tree is then configured with the examples, and they
# are skipped (reported, not counted) when CMake finds no MPI.
MPI_PREFIX = "examples/spiral_mpi"


# The tests that look after each part of the tree: a mutant's own tests are built and
# run first, and only a mutant they all pass goes on to the whole suite (so a killed
# mutant costs one small rebuild; the verdict is the same).
FIRST = [
    ("src/grad/", ["test_grad", "test_grad_contract", "test_grad_mlp", "test_grad_ckpt",
                   "test_grad_nfe"]),
    ("src/event/", ["test_event"]),
    ("src/cnf/cnf.c", ["test_cnf"]),
    ("src/cnf/", ["test_planar", "test_cnf"]),
    ("src/net/", ["test_net", "test_net_files"]),
    ("src/nn/div", ["test_mlp_div", "test_mlp_act"]),
    ("src/nn/flow", ["test_mlp_div"]),
    ("src/nn/vmath", ["test_act_accuracy", "test_mlp_act"]),
    ("src/nn/act", ["test_act_accuracy", "test_mlp_act"]),
    ("src/nn/", ["test_mlp", "test_mlp_act", "test_mlp_batch", "test_mlp_ws", "test_mlp_io",
                 "test_mlp_files", "test_mlp_div"]),
    ("src/seq/", ["test_latent", "test_latent_api", "test_rnn", "test_seq_dist", "test_tseries"]),
    ("src/ode/ens", ["test_ensemble"]),
    ("src/ode/", ["test_ode", "test_ode_control", "test_ode_fail", "test_ode_failinfo",
                  "test_tableau", "test_grad_contract"]),
    ("src/train/", ["test_train", "test_train_contract"]),
    ("examples/util/cnfdata", ["test_cnfdata"]),
    ("examples/util/latent_fit", ["test_latent_fit"]),
    ("examples/util/tsdata", ["test_tsdata", "test_latent_fit"]),
    (MPI_PREFIX, ["test_spiral_mpi"]),
    ("examples/util/", ["test_idx"]),
]


def first_tests(path):
    for prefix, tests in FIRST:
        if path.startswith(prefix):
            return tests
    return []


def sh(cmd, cwd, timeout=None):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def copy_tree(dst):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           check=True, stdout=subprocess.PIPE, text=True).stdout.split("\n")
    for f in files:
        if not f or not os.path.isfile(os.path.join(ROOT, f)):
            continue
        os.makedirs(os.path.join(dst, os.path.dirname(f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(dst, f))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--only", help="comma-separated mutant names")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep", help="scratch folder to use and keep (default: a temporary one)")
    a = ap.parse_args()
    mutants = MUTANTS
    if a.only:
        want = set(a.only.split(","))
        unknown = want - {m[0] for m in MUTANTS}
        if unknown:
            sys.exit("unknown mutants: " + ", ".join(sorted(unknown)))
        mutants = [m for m in MUTANTS if m[0] in want]
    if a.list:
        for name, path, _, _, what in mutants:
            print("%-28s %-22s %s" % (name, path, what))
        return 0

    # Every snippet must occur exactly once in the current sources.
    stale = []
    for name, path, old, _, _ in mutants:
        with open(os.path.join(ROOT, path)) as fh:
            text = fh.read()
        for o in (old if isinstance(old, tuple) else (old,)):
            n = text.count(o)
            if n != 1:
                stale.append("%s: its snippet occurs %d times in %s" % (name, n, path))
    if stale:
        print("mutate.py: mutants that no longer apply:\n  " + "\n  ".join(stale),
              file=sys.stderr)
        return 2

    work = a.keep or tempfile.mkdtemp(prefix="libnode-mutate-")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "src-tree")
    build = os.path.join(work, "build")
    if os.path.exists(src):
        shutil.rmtree(src)
    copy_tree(src)
    t0 = time.time()
    mpi = any(m[1].startswith(MPI_PREFIX) for m in mutants)
    cfg = sh(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
              "-DLIBNODE_BUILD_EXAMPLES=" + ("ON" if mpi else "OFF"), "-DLIBNODE_BUILD_BENCH=OFF",
              "-DLIBNODE_BUILD_SHARED=OFF", "-DLIBNODE_WERROR=OFF"], cwd=work)
    if cfg.returncode != 0:
        print(cfg.stdout, file=sys.stderr)
        return 2
    with open(os.path.join(build, "CMakeCache.txt")) as fh:
        if mpi and "LIBNODE_WITH_MPI:INTERNAL=ON" not in fh.read():
            skipped = [m[0] for m in mutants if m[1].startswith(MPI_PREFIX)]
            print("skipped (CMake found no MPI): " + ", ".join(skipped))
            mutants = [m for m in mutants if not m[1].startswith(MPI_PREFIX)]
            if not mutants:
                return 0
    ctest = ["ctest", "--test-dir", build, "-j", str(a.jobs), "--timeout", "300"]
    base = sh(["cmake", "--build", build, "-j", str(a.jobs)], cwd=work)
    if base.returncode == 0:
        base = sh(ctest + ["--output-on-failure"], cwd=work)
    if base.returncode != 0:
        print(base.stdout[-6000:], file=sys.stderr)
        print("mutate.py: the unmutated tree does not build or pass its tests (above: the "
              "end of what failed)", file=sys.stderr)
        return 2
    print("baseline built and green in %.0f s; %d mutants" % (time.time() - t0, len(mutants)))

    survived, killed = [], 0
    for name, path, old, new, what in mutants:
        t1 = time.time()
        target = os.path.join(src, path)
        with open(target) as fh:
            orig = fh.read()
        mutated = orig
        for o, n in zip(*((old, new) if isinstance(old, tuple) else ((old,), (new,)))):
            mutated = mutated.replace(o, n, 1)
        with open(target, "w") as fh:
            fh.write(mutated)
        try:
            own = first_tests(path)
            if own:
                b = sh(["cmake", "--build", build, "-j", str(a.jobs), "--target"] + own,
                       cwd=work)
                if b.returncode == 0:
                    r = sh(ctest + ["-R", "^(%s)$" % "|".join(own)], cwd=work)
                    if r.returncode != 0:
                        failing = [l.split("-", 1)[1].strip().split(" ")[0]
                                   for l in r.stdout.splitlines()
                                   if "(Failed)" in l or "(Timeout)" in l]
                        killed += 1
                        print("%-28s %-45s %4.0f s  %s" % (
                            name, what[:45], time.time() - t1,
                            "killed by " + ", ".join(failing or ["ctest"])), flush=True)
                        continue
            b = sh(["cmake", "--build", build, "-j", str(a.jobs)], cwd=work)
            if b.returncode != 0:
                verdict = "DOES NOT COMPILE"
                survived.append(name)
            else:
                r = sh(ctest, cwd=work)
                failing = [l.split("-", 1)[1].strip().split(" ")[0]
                           for l in r.stdout.splitlines() if "(Failed)" in l or "(Timeout)" in l]
                if r.returncode != 0:
                    verdict = "killed by " + ", ".join(failing or ["ctest"])
                    killed += 1
                else:
                    verdict = "SURVIVED"
                    survived.append(name)
        finally:
            with open(target, "w") as fh:
                fh.write(orig)
        print("%-28s %-45s %4.0f s  %s" % (name, what[:45], time.time() - t1, verdict),
              flush=True)
    # leave the build matching the unmutated sources
    sh(["cmake", "--build", build, "-j", str(a.jobs)], cwd=work)
    total = len(mutants)
    print("\nmutation score: %d / %d killed (%.0f %%) in %.0f s" %
          (killed, total, 100.0 * killed / total, time.time() - t0))
    if survived:
        print("survived: " + ", ".join(survived))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not survived else 1


if __name__ == "__main__":
    sys.exit(main())
