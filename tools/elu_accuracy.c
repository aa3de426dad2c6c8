/*
 * Exhaustive accuracy check of fa_scaled_expm1_f (src/fa_math.h), the float
 * ELU's alpha * expm1(x): every negative float32 (-0 excluded, -inf
 * included) for several alphas, against the float64 value rounded to float
 * (the oracle the tests use).  Prints the largest distance in ulp (it must
 * be 1 at most) and how often the result is not the correctly rounded one.
 *
 *   gcc -O3 -fno-trapping-math -ffp-contract=off -fno-math-errno -mavx512f \
 *       -mfma -fopenmp -Isrc tools/elu_accuracy.c -o elu_accuracy -lm
 *   ./elu_accuracy          # about a minute on two cores
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

/* floats as integers ordered like the floats: ulp distance is a difference */
static int64_t ordered(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}

int main(void)
{
    const float alphas[] = {1.0f, 0.3f, 1.7f, 2.5f, 0.001f, 7.0f, 1.0507f, -0.5f, 1e-30f, 3e38f};
    int failed = 0;
    for (size_t ai = 0; ai < sizeof alphas / sizeof *alphas; ai++) {
        const float alpha = alphas[ai];
        long beyond = 0, inexact = 0;
        int64_t worst = 0;
        float worst_x = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : beyond, inexact)
        for (int64_t b = 0; b < (END - FIRST + BLOCK - 1) / BLOCK; b++) {
            float xs[BLOCK], ys[BLOCK];
            int m = 0;
            for (int64_t u = FIRST + b * BLOCK; u < FIRST + (b + 1) * BLOCK && u < END; u++) {
                const uint32_t w = (uint32_t)u;
                memcpy(&xs[m++], &w, sizeof w);
            }
            for (int i = 0; i < m; i++)     /* the vectorised loop, as in the kernels */
                ys[i] = fa_scaled_expm1_f(xs[i], alpha);
            for (int i = 0; i < m; i++) {
                const float want = (float)((double)alpha * expm1((double)xs[i]));
                const int64_t d = llabs(ordered(ys[i]) - ordered(want));
                inexact += d > 0;
                beyond += d > 1;
                if (d > worst) {
#pragma omp critical
                    if (d > worst) {
                        worst = d;
                        worst_x = xs[i];
                    }
                }
            }
        }
        printf("alpha %-8g max %lld ulp (at x = %a), %ld beyond 1 ulp, %.3f%% not correctly rounded\n",
               alpha, (long long)worst, worst_x, beyond, 100.0 * inexact / (double)(END - FIRST));
        failed |= beyond > 0;
    }
    return failed;
}
