/*
 * Exhaustive accuracy check of fa_elu_grad_f (src/fa_math.h), the float ELU
 * gradient g * alpha * exp(x), as the kernels use it: every negative float32
 * (-0 excluded, -inf included) for several alphas, lanes below
 * fa_elu_grad_xmin_f taking fa_elu_grad_dbl_f.  For each alpha it prints
 *   - the largest relative error of alpha * exp(x) as the float sum the
 *     final multiply-add uses, against the float64 exp (whose own error,
 *     2^-52, is far below): below 2^-25 the result is within one ulp of the
 *     exact value rounded for every g (it is one rounding of g times it);
 *   - for g = 1, -0.7 and 1e30: the largest distance in ulp from the float64
 *     value rounded to float (the oracle the tests use; it must be 1 at most)
 *     and how often the result is not that value;
 *   - where built for AVX2 with FMA or AVX-512F: whether fa_elu_grad_v, the
 *     kernels' vector path, gives fa_elu_grad_f's bits on every value above
 *     xmin.
 *
 *   gcc -O3 -fno-trapping-math -ffp-contract=off -fno-math-errno -mavx2 \
 *       -mfma -fopenmp -Isrc tools/elu_grad_accuracy.c -o elu_grad_accuracy -lm
 *   (-mavx512f -mfma for AVX-512F's 16-lane path)
 *   ./elu_grad_accuracy     # a few minutes on two cores (or: ./elu_grad_accuracy 1 0.3)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fa_math.h"

#define BLOCK (1 << 16)
#define FIRST 0x80000001LL      /* the bit pattern of -(smallest subnormal) */
#define END 0xff800001LL        /* one past -inf */
#define NG 3

/* floats as integers ordered like the floats: ulp distance is a difference */
static int64_t ordered(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}

int main(int argc, char **argv)
{
    float alphas[16] = {1.0f, 0.3f, 1.7f, 2.5f, 0.001f, 7.0f, 1.0507f, -0.5f, 1e-30f, 3e38f};
    size_t nalpha = 10;
    if (argc > 1) {             /* alphas to check instead, e.g. ./elu_grad_accuracy 1 0.3 */
        nalpha = 0;
        for (int i = 1; i < argc && nalpha < 16; i++)
            alphas[nalpha++] = strtof(argv[i], NULL);
    }
    const float gs[NG] = {1.0f, -0.7f, 1e30f};
    int failed = 0;
    for (size_t ai = 0; ai < nalpha; ai++) {
        const float alpha = alphas[ai];
        const float xmin = fa_elu_grad_xmin_f(alpha);
        long beyond = 0, inexact[NG] = {0}, vector_differs = 0;
        int64_t worst[NG] = {0};
        double worst_rel = 0;
        float worst_rel_x = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : beyond, vector_differs)
        for (int64_t b = 0; b < (END - FIRST + BLOCK - 1) / BLOCK; b++) {
            float xs[BLOCK], ys[BLOCK], sh[BLOCK], sl[BLOCK];
            double ex[BLOCK];
            int m = 0;
            long inex[NG] = {0};
            for (int64_t u = FIRST + b * BLOCK; u < FIRST + (b + 1) * BLOCK && u < END; u++) {
                const uint32_t w = (uint32_t)u;
                memcpy(&xs[m++], &w, sizeof w);
            }
            for (int i = 0; i < m; i++) {
                ex[i] = (double)alpha * exp((double)xs[i]);
                if (xs[i] >= xmin) {
                    fa_elu_grad_parts_f(xs[i], alpha, &sh[i], &sl[i]);
                    const double exact = ex[i];
                    const double rel = fabs(((double)sh[i] + (double)sl[i]) - exact) / fabs(exact);
                    if (rel > worst_rel) {
#pragma omp critical
                        if (rel > worst_rel) {
                            worst_rel = rel;
                            worst_rel_x = xs[i];
                        }
                    }
                }
            }
            for (int gi = 0; gi < NG; gi++) {
                const float g = gs[gi];
                for (int i = 0; i < m; i++)     /* as in the kernels */
                    ys[i] = xs[i] < xmin ? fa_elu_grad_dbl_f(g, xs[i], alpha)
                                         : fa_elu_grad_f(g, xs[i], alpha);
#if FA_ELU_GRAD_LANES > 1
                float table[16];
                fa_elu_grad_table_f(alpha, table);
                const fa_v ah = fa_v_table8(table), al = fa_v_table8(table + 8);
                for (int i = 0; i + FA_ELU_GRAD_LANES <= m; i += FA_ELU_GRAD_LANES) {
                    float v[FA_ELU_GRAD_LANES];
                    FA_V(storeu_ps)(v, fa_elu_grad_v(FA_V(set1_ps)(g), FA_V(loadu_ps)(xs + i),
                                                     ah, al));
                    for (int l = 0; l < FA_ELU_GRAD_LANES; l++)
                        vector_differs += xs[i + l] >= xmin && memcmp(&v[l], &ys[i + l], 4) != 0;
                }
#endif
                for (int i = 0; i < m; i++) {
                    const float want = (float)((double)g * ex[i]);
                    const int64_t d = llabs(ordered(ys[i]) - ordered(want));
                    inex[gi] += d > 0;
                    beyond += d > 1;
                    if (d > worst[gi]) {
#pragma omp critical
                        if (d > worst[gi])
                            worst[gi] = d;
                    }
                }
            }
#pragma omp critical
            for (int gi = 0; gi < NG; gi++)
                inexact[gi] += inex[gi];
        }
        printf("alpha %-8g xmin %-9g max relative error 2^%.2f (at x = %a)", alpha, xmin,
               worst_rel > 0 ? log2(worst_rel) : -INFINITY, worst_rel_x);
        for (int gi = 0; gi < NG; gi++)
            printf("; g %g: max %lld ulp, %.3f%% not correctly rounded", gs[gi],
                   (long long)worst[gi], 100.0 * inexact[gi] / (double)(END - FIRST));
#if FA_ELU_GRAD_LANES > 1
        printf("; vector path: %ld values differ from the scalar one", vector_differs);
#endif
        printf("\n");
        fflush(stdout);
        failed |= beyond > 0 || worst_rel >= 0x1p-25 || vector_differs > 0;
    }
    return failed;
}
