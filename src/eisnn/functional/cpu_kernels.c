/* eisnn CPU kernels: element-wise parts of the E-I integration and the multi-step LIF neuron,
 * forward and backward, each in one pass over memory.
 *
 * Compiled on first use by eisnn/functional/cpu_kernels.py (plain C with OpenMP, no PyTorch
 * headers) and called through ctypes on float32 buffers; `threads` OpenMP threads share the
 * samples (E-I) or elements (LIF). With PyTorch's own libgomp already loaded, the kernels run
 * on the same thread pool as PyTorch's operators.
 * Floating-point contraction is off (-ffp-contract=off) so that every operation rounds like the
 * PyTorch element-wise ops it replaces (functional/ei_fused.py, functional/lif.py): forward
 * results are bit-identical to them; only sums of the backward are reordered.
 *
 * E-I integration, per sample s, channel c, position k ([n, e, p] buffers; I_EE and its gradient
 * are channel slices with sample stride ee_stride). Stabilization modes: 0 none (q = div),
 * 1 epsilon (q = div + eps), 2 adaptive (zeros of div replaced by the sample's smallest non-zero
 * entry, +inf when there is none):
 *
 *   forward:  a = I_EE - sub (written over sub),  out = g a / q + b
 *             (i_ee NULL: the balanced mode, sub holds a already and is only read)
 *   backward: dI_EE = g G / q,  div := g G a / q^2 (= -dL/d div, straight-through),
 *             sums over k of G a / q and of G
 *
 * LIF: the backward recomputes H from the input (nothing else is saved) and runs the surrogate
 * recurrence backwards in time, all in registers:
 *
 *   H[t] = V[t-1] - V[t-1] / tau + X[t],  S[t] = (H[t] >= V_th),  V[t] = H[t] - V_th S[t]
 *   dH[t] = dV[t] + dS[t] sg'(H[t] - V_th),  dV[t-1] = dH[t] - dH[t] / tau,  dX[t] = dH[t]
 *
 * sg' is the sigmoid surrogate a sig(a u)(1 - sig(a u)) (exp below: a Cephes-style polynomial,
 * within 2 ulp) or the arctan surrogate (a/2) / (1 + (pi/2 a u)^2).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EISNN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EISNN_CLONES
#endif

/* Tuning constants, passed by the build from functional/tuning.py (where they are documented). */
#define BLOCK EISNN_BLOCK
#define MIN_PARALLEL EISNN_MIN_PARALLEL

enum { SURROGATE_SIGMOID = 0, SURROGATE_ARCTAN = 1 };
enum { STABILIZE_NONE = 0, STABILIZE_EPSILON = 1, STABILIZE_ADAPTIVE = 2 };

/* Smallest non-zero entry of d[0..m) (+inf if none, NaN if any entry is NaN). */
static inline __attribute__((always_inline)) float row_min_f32(const float *restrict d, long m) {
    float best = __builtin_inff();
    int nan = 0;
#pragma omp simd reduction(min : best) reduction(| : nan)
    for (long k = 0; k < m; ++k) {
        float y = d[k] == 0.0f ? __builtin_inff() : d[k];
        nan |= d[k] != d[k];
        best = y < best ? y : best;
    }
    return nan ? __builtin_nanf("") : best;
}

static inline float stabilized(float d, int mode, float fill, float eps) {
    return mode == STABILIZE_ADAPTIVE ? (d == 0.0f ? fill : d) : (mode == STABILIZE_EPSILON ? d + eps : d);
}

EISNN_CLONES void ei_forward_f32(const float *restrict i_ee, long ee_stride, float *restrict sub,
                                 const float *restrict div, float *restrict out, const float *restrict g,
                                 const float *restrict b, float *restrict row_min, long n, long e, long p, int mode,
                                 float eps, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (n * e * p >= MIN_PARALLEL)
    for (long s = 0; s < n; ++s) {
        float fill = mode == STABILIZE_ADAPTIVE ? row_min_f32(div + s * e * p, e * p) : 0.0f;
        row_min[s] = fill;
        for (long c = 0; c < e; ++c) {
            long off = (s * e + c) * p;
            const float *restrict dc = div + off;
            float *restrict sc = sub + off, *restrict oc = out + off;
            float gc = g[c], bc = b[c];
            if (i_ee == NULL) { /* balanced: sub holds a already */
#pragma omp simd
                for (long k = 0; k < p; ++k)
                    oc[k] = gc * sc[k] / stabilized(dc[k], mode, fill, eps) + bc;
                continue;
            }
            const float *restrict ie = i_ee + s * ee_stride + c * p;
#pragma omp simd
            for (long k = 0; k < p; ++k) {
                float a = ie[k] - sc[k];
                sc[k] = a;
                oc[k] = gc * a / stabilized(dc[k], mode, fill, eps) + bc;
            }
        }
    }
}

EISNN_CLONES void ei_backward_f32(const float *restrict grad, const float *restrict a, float *restrict div,
                                  float *restrict d_ee, long ee_stride, const float *restrict g,
                                  const float *restrict row_min, float *restrict sum_g, float *restrict sum_b, long n,
                                  long e, long p, int mode, float eps, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (n * e * p >= MIN_PARALLEL)
    for (long s = 0; s < n; ++s) {
        for (long c = 0; c < e; ++c) {
            long off = (s * e + c) * p;
            const float *restrict gr = grad + off, *restrict ac = a + off;
            float *restrict dc = div + off, *restrict ec = d_ee + s * ee_stride + c * p;
            float gc = g[c], fill = row_min[s], acc_g = 0.0f, acc_b = 0.0f;
#pragma omp simd reduction(+ : acc_g, acc_b)
            for (long k = 0; k < p; ++k) {
                float q = stabilized(dc[k], mode, fill, eps);
                float gq = gr[k] / q;
                float prod = gq * ac[k];
                ec[k] = gc * gq;
                dc[k] = gc * prod / q;
                acc_g += prod;
                acc_b += gr[k];
            }
            sum_g[s * e + c] = acc_g;
            sum_b[s * e + c] = acc_b;
        }
    }
}

/* exp(x) for x in float range: 2^n e^r, |r| <= ln2 / 2, degree-6 polynomial. */
static inline float exp_f32(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float integrate(float v, float x, float tau) {
    return tau == 2.0f ? x + 0.5f * v : (v - v / tau) + x;
}

/* Spikes of the steps x [steps, m]. */
EISNN_CLONES void lif_forward_f32(const float *restrict x, float *restrict spikes, long steps, long m, float tau,
                                  float v_threshold, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (m >= MIN_PARALLEL)
    for (long start = 0; start < m; start += BLOCK) {
        long width = m - start < BLOCK ? m - start : BLOCK;
        float v[BLOCK];
        for (long k = 0; k < width; ++k) v[k] = 0.0f;
        for (long t = 0; t < steps; ++t) {
            const float *restrict xt = x + t * m + start;
            float *restrict st = spikes + t * m + start;
#pragma omp simd
            for (long k = 0; k < width; ++k) {
                float h = integrate(v[k], xt[k], tau);
                float s = h >= v_threshold ? 1.0f : 0.0f;
                st[k] = s;
                v[k] = h - v_threshold * s;
            }
        }
    }
}

/* One step back in time for `width` elements: dX[t] = dH[t] and dV[t-1] from dV[t] (in grad_v). */
static inline __attribute__((always_inline)) void backward_step(
    const float *restrict ht, const float *restrict gs, float *restrict gx, float *restrict grad_v, long width,
    float tau, float v_threshold, const int sigmoid, float alpha, float arctan_scale) {
#pragma omp simd
    for (long k = 0; k < width; ++k) {
        float u = ht[k] - v_threshold;
        float grad_h;
        if (sigmoid) {
            float sig = 1.0f / (1.0f + exp_f32(-(alpha * u)));
            grad_h = grad_v[k] + alpha * (gs[k] * (1.0f - sig) * sig);
        } else {
            float q = arctan_scale * u;
            grad_h = grad_v[k] + gs[k] * ((0.5f * alpha) / (1.0f + q * q));
        }
        gx[k] = grad_h;
        grad_v[k] = tau == 2.0f ? grad_h * 0.5f : grad_h - grad_h / tau;
    }
}

/* dL/dX from X and dL/dS (both [steps, m]). Each thread keeps the H history of one block of
 * elements (at most 16384 floats, or `steps` floats when steps > 16384) in a heap buffer.
 * Returns 0, or 1 when that buffer cannot be allocated (grad_x is then incomplete). */
EISNN_CLONES int lif_backward_f32(const float *restrict x, const float *restrict grad_spikes, float *restrict grad_x,
                                  long steps, long m, float tau, float v_threshold, int surrogate, float alpha,
                                  float arctan_scale, int threads) {
    long block = steps <= 64 ? BLOCK : (steps >= 16384 ? 1 : 16384 / steps);
    int failed = 0;
#pragma omp parallel num_threads(threads) if (m >= MIN_PARALLEL) reduction(| : failed)
    {
        float *h = malloc(sizeof(float) * (size_t)(steps * block));
        failed = h == NULL;
#pragma omp for schedule(static)
        for (long start = 0; start < m; start += block) {
            if (h == NULL) continue;
            long width = m - start < block ? m - start : block;
            float v[BLOCK], grad_v[BLOCK];
            for (long k = 0; k < width; ++k) v[k] = 0.0f;
            for (long t = 0; t < steps; ++t) {
                const float *restrict xt = x + t * m + start;
                float *restrict ht = h + t * block;
#pragma omp simd
                for (long k = 0; k < width; ++k) {
                    float hk = integrate(v[k], xt[k], tau);
                    ht[k] = hk;
                    v[k] = hk - v_threshold * (hk >= v_threshold ? 1.0f : 0.0f);
                }
            }
            for (long k = 0; k < width; ++k) grad_v[k] = 0.0f;
            for (long t = steps - 1; t >= 0; --t) {
                const float *ht = h + t * block, *gs = grad_spikes + t * m + start;
                float *gx = grad_x + t * m + start;
                if (surrogate == SURROGATE_SIGMOID)
                    backward_step(ht, gs, gx, grad_v, width, tau, v_threshold, 1, alpha, arctan_scale);
                else
                    backward_step(ht, gs, gx, grad_v, width, tau, v_threshold, 0, alpha, arctan_scale);
            }
        }
        free(h);
    }
    return failed;
}
