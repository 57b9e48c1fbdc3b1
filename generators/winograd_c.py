"""Winograd's transforms as generated C, for `generators.winograd` on the CPU.

The tile transforms are constant linear maps between an image layout [N, C, S, S] and the batched
matmul's tile layout [A, A, T, T, N, C] (A = 6 points per tile side, T tiles per image side); the
kernel transform maps each 3x3 kernel to its 36 values G g G^T. As dense matmuls (`winograd.py`'s
fallback) they took about a quarter of an 8x8 training step: GEMMs of
[144, 64] x [64, 16k-32k] ran at 4-8 GB/s, their matrices 86% zeros at 8x8, and autograd copied
the kernel transform's gradient once more to undo the matmul's transposed operand. Here each map
is straight-line C generated from the same matrices, with the nonzero coefficients as constants:
a job gathers 16 channels of an image into vector lanes (a 16x16 register transpose, or gathers
for 3x3 kernels, with AVX-512; scalar code without), applies the two 1-D transforms, and writes
its output with streaming stores (the results go to the next op, not back through this core's
cache; the tile rows' 144 streams are prefetched by hand). Measured in 8x8 training steps
(batch 64, `benchmarks/train_profile.py`'s configuration): the maps took 64-69 ms of a ~500 ms
step against ~100 ms for the matmuls and copies; per-step interleaved A/Bs: C tile transforms
1.05-1.07x, streaming stores 1.03x and 1.02x; at 4x4 (dense matrices there) 1.03x, within noise.

Built on first use with the system's C compiler (`cc -O3 -march=native -fopenmp`, about a
second) into ~/.cache/gan-studio (or $STUDIO_CACHE), keyed by the source, compiler and CPU flags;
without a compiler, or if the build fails, `available()` is False (with a warning) and the
matmuls are used: the same maps up to float rounding. $STUDIO_NO_C=1 turns it off. Threads are
OpenMP's: the library resolves to the libgomp torch has already loaded, so it shares torch's
thread pool (its own pthreads fought torch's spinning OpenMP workers: 2x slower).
Each map is the other's adjoint with the matrix transposed, so autograd Functions calling each
other in their backward give every derivative order (the gradient penalty needs two).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from fractions import Fraction
from pathlib import Path

import torch

from .winograd_transforms import ALPHA, C_SIZES, G, TILE, axis_transforms

_CB = 16  # channels per vector (one AVX-512 register of float32)


def _coef(v: float) -> str:
    f = Fraction(v).limit_denominator(1000)
    if abs(float(f) - v) > 1e-12:  # not a small fraction: write the float exactly
        return f"{v!r}f"
    return f"({f.numerator}.0f/{f.denominator}.0f)" if f.denominator != 1 else f"{f.numerator}.0f"


def _sum(terms: list[tuple[float, str]]) -> str:
    """C for sum(k * x) over nonzero k, as adds and subtracts where k = +-1."""
    out = ""
    for k, x in terms:
        if k == 1.0:
            out += f" + {x}" if out else x
        elif k == -1.0:
            out += f" - {x}"
        else:
            out += f" + {_coef(k)} * {x}" if out else f"{_coef(k)} * {x}"
    return out or "zero"


def _to_tiles_block(name: str, p: list[list[float]], s: int, a: int, t: int) -> str:
    """Block function: 16 channels' S*S pixels (xin[p]) -> the A*A*T*T tile rows (out[r])."""
    at = a * t
    lines = [f"static void {name}(const v16 *xin, v16 *out) {{", "    const v16 zero = {0};"]
    for h in range(s):
        for jx in range(at):
            terms = [(p[jx][w], f"xin[{h * s + w}]") for w in range(s) if p[jx][w] != 0]
            lines.append(f"    const v16 t{h}_{jx} = {_sum(terms)};")
    for iy in range(at):
        i, ty = divmod(iy, t)
        for jx in range(at):
            j, tx = divmod(jx, t)
            terms = [(p[iy][h], f"t{h}_{jx}") for h in range(s) if p[iy][h] != 0]
            lines.append(f"    out[{((i * a + j) * t + ty) * t + tx}] = {_sum(terms)};")
    lines.append("    (void)zero;\n}")
    return "\n".join(lines)


def _from_tiles_block(name: str, q: list[list[float]], s: int, a: int, t: int) -> str:
    """Block function: the A*A*T*T tile rows (m[r]) -> 16 channels' S*S pixels (y[p])."""
    at = a * t
    lines = [f"static void {name}(const v16 *m, v16 *y) {{", "    const v16 zero = {0};"]
    for iy in range(at):
        i, ty = divmod(iy, t)
        for w in range(s):
            terms = []
            for jx in range(at):
                j, tx = divmod(jx, t)
                if q[w][jx] != 0:
                    terms.append((q[w][jx], f"m[{((i * a + j) * t + ty) * t + tx}]"))
            lines.append(f"    const v16 t{iy}_{w} = {_sum(terms)};")
    for h in range(s):
        for w in range(s):
            terms = [(q[h][iy], f"t{iy}_{w}") for iy in range(at) if q[h][iy] != 0]
            lines.append(f"    y[{h * s + w}] = {_sum(terms)};")
    lines.append("    (void)zero;\n}")
    return "\n".join(lines)


_DRIVER = r"""
#ifdef __AVX512F__
#include <immintrin.h>
/* 16x16 float transpose in registers: r[i] holds row i before, column i after */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
            t[8 * i + j + 4] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
}
#define FAST 1
#else
#define FAST 0
#endif

typedef struct { int to; int kernel; const float *src, *bias; float *dst; long n, c; float scale; long begin, end; } job_t;

/* cw <= 16 channels, each a row of P pixels, one after another -> pix[p] (a vector over the channels) */
static void gather(const float *src, long cw, long P, v16 *pix) {
#if FAST
    if (cw == CB && P % CB == 0) {
        for (long q = 0; q < P; q += CB) {
            __m512 r[16];
            for (int c = 0; c < CB; c++) r[c] = _mm512_loadu_ps(src + c * P + q);
            transpose16(r);
            for (int p = 0; p < CB; p++) pix[q + p] = (v16)r[p];
        }
        return;
    }
    if (cw == CB) {  /* e.g. 3x3 kernels: 16 x 9 consecutive floats, one gather per pixel */
        const __m512i lanes = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                 _mm512_set1_epi32((int)P));
        for (long p = 0; p < P; p++) pix[p] = (v16)_mm512_i32gather_ps(lanes, src + p, 4);
        return;
    }
#endif
    if (cw < CB) memset(pix, 0, P * sizeof(v16));
    for (long c = 0; c < cw; c++)
        for (long p = 0; p < P; p++) pix[p][c] = src[c * P + p];
}

/* pix[p] * scale + bias -> 16 channels' rows of P pixels */
static void scatter(const v16 *pix, long cw, long P, float scale, const float *bias, float *dst) {
#if FAST
    const __m512 k = _mm512_set1_ps(scale);
    if (cw == CB && P % CB == 0) {
        const __m512 b = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
        for (long q = 0; q < P; q += CB) {
            __m512 r[16];
            for (int p = 0; p < CB; p++) r[p] = _mm512_fmadd_ps((__m512)pix[q + p], k, b);
            transpose16(r);
            if (((size_t)dst & 63) == 0)  /* streaming stores here too: an 8x8 step 2% faster (A/B) */
                for (int c = 0; c < CB; c++) _mm512_stream_ps(dst + c * P + q, r[c]);
            else
                for (int c = 0; c < CB; c++) _mm512_storeu_ps(dst + c * P + q, r[c]);
        }
        return;
    }
    if (cw == CB) {  /* 3x3 kernels: one scatter per pixel */
        const __m512i lanes = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                 _mm512_set1_epi32((int)P));
        const __m512 b = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
        for (long p = 0; p < P; p++) _mm512_i32scatter_ps(dst + p, lanes, _mm512_fmadd_ps((__m512)pix[p], k, b), 4);
        return;
    }
#endif
    for (long c = 0; c < cw; c++) {
        const float b = bias ? bias[c] : 0.0f;
        for (long p = 0; p < P; p++) dst[c * P + p] = scale * pix[p][c] + b;
    }
}

static void run_items(const job_t *jb) {
    const kernel_t *k = &KERNELS[jb->kernel];
    const long P = k->s * k->s, R = k->rows, C = jb->c, NC = jb->n * jb->c;
    const long supers = (C + SB * CB - 1) / (SB * CB);
    v16 pix[MAX_P], rows[MAX_R][SB], tmp[MAX_R];
    for (long it = jb->begin; it < jb->end; it++) {
        const long n = it / supers, s0 = (it % supers) * SB * CB;
        const long width = C - s0 < SB * CB ? C - s0 : SB * CB;
        if (!jb->to) {  /* the tile rows, 4 vectors of each at a time */
            if (it + 1 < jb->end) {  /* the next item's rows: 144 streams are more than the prefetchers follow */
                const long n1 = (it + 1) / supers, s1 = ((it + 1) % supers) * SB * CB;
                const float *next = jb->src + n1 * C + s1;
                for (long r = 0; r < R; r++)
                    for (long l = 0; l < SB * CB && s1 + l < C; l += 16) __builtin_prefetch(next + r * NC + l);
            }
            if (width < SB * CB) memset(rows, 0, sizeof rows);
            for (long r = 0; r < R; r++) memcpy(rows[r], jb->src + r * NC + n * C + s0, width * sizeof(float));
        }
        for (long b = 0; b * CB < width; b++) {
            const long c0 = s0 + b * CB, cw = C - c0 < CB ? C - c0 : CB;
            if (jb->to) {
                gather(jb->src + (n * C + c0) * P, cw, P, pix);
                k->to(pix, tmp);
                for (long r = 0; r < R; r++) rows[r][b] = jb->scale == 1.0f ? tmp[r] : jb->scale * tmp[r];
            } else {
                for (long r = 0; r < R; r++) tmp[r] = rows[r][b];
                k->from(tmp, pix);
                scatter(pix, cw, P, jb->scale, jb->bias ? jb->bias + c0 : NULL, jb->dst + (n * C + c0) * P);
            }
        }
        if (jb->to) {
            if (width == SB * CB)
                for (long r = 0; r < R; r++) {
                    float *dst = jb->dst + r * NC + n * C + s0;
#if FAST
                    /* streaming stores: the tile rows go to the batched matmul, not to be read back from
                       cache, and skipping the read-for-ownership made a step 3% faster (A/B) */
                    if (((size_t)dst & 63) == 0) {
                        for (int b = 0; b < SB; b++) _mm512_stream_ps(dst + b * CB, (__m512)rows[r][b]);
                        continue;
                    }
#endif
                    for (int b = 0; b < SB; b++) memcpy(dst + b * CB, &rows[r][b], sizeof(v16));
                }
            else
                for (long r = 0; r < R; r++) memcpy(jb->dst + r * NC + n * C + s0, rows[r], width * sizeof(float));
        }
    }
}

/* to = 1: src [n, c, s, s] -> dst [rows, n, c]; to = 0: src [rows, n, c] -> dst [n, c, s, s] (+ bias).
   Threads: OpenMP, whose runtime is the one torch has loaded (the same soname), so its pool and
   spin-waits are shared with torch's own ops rather than fighting them. */
int tiles(int to, int kernel, const float *src, const float *bias, float *dst, long n, long c, float scale,
          int threads) {
    if (kernel < 0 || kernel >= N_KERNELS || (to ? !KERNELS[kernel].to : !KERNELS[kernel].from)) return 1;
    const long items = n * ((c + SB * CB - 1) / (SB * CB));
    if (threads < 1) threads = 1;
    if (items < threads) threads = items > 0 ? (int)items : 1;
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int k = 0; k < threads; k++) {
        job_t jb = {to, kernel, src, bias, dst, n, c, scale, items * k / threads, items * (k + 1) / threads};
        run_items(&jb);
#if FAST
        _mm_sfence();
#endif
    }
    return 0;
}
"""


def _kernels() -> list[tuple[str, str, int, int, int, list[list[float]]]]:
    """(name, "to" | "from", S, A, T, matrix) for every map conv3x3 and its derivatives use at the
    sizes in `winograd_transforms.C_SIZES`; the matrix is [A T, S] for "to" (rows (j, tx)), [S, A T] for "from"."""
    out = []
    for size in C_SIZES:
        b, a = axis_transforms(size)  # [A, T, S], [S, A, T], float64
        tiles = size // TILE
        p_in = b.reshape(ALPHA * tiles, size)
        q_out = a.reshape(size, ALPHA * tiles)
        out += [(f"in{size}", "to", size, ALPHA, tiles, p_in.tolist()),
                (f"in{size}_adj", "from", size, ALPHA, tiles, p_in.t().tolist()),
                (f"out{size}", "from", size, ALPHA, tiles, q_out.tolist()),
                (f"out{size}_adj", "to", size, ALPHA, tiles, q_out.t().tolist())]
    g = torch.tensor(G, dtype=torch.float64)  # the kernel transform G g G^T, [36] rows of a 3x3 kernel
    out += [("kernel", "to", 3, ALPHA, 1, g.tolist()), ("kernel_adj", "from", 3, ALPHA, 1, g.t().tolist())]
    return out


def source() -> tuple[str, dict[str, tuple[int, int, int, int]]]:
    """The C source, and each map's (index in the library, S, A, T)."""
    kernels = _kernels()
    head = ["#include <string.h>", f"#define CB {_CB}", "#define SB 4",
            "typedef float v16 __attribute__((vector_size(CB * sizeof(float)), aligned(64)));",
            "typedef void (*block_fn)(const v16 *, v16 *);",
            "typedef struct { block_fn to, from; long s, rows; } kernel_t;"]
    blocks, table = [], []
    for name, kind, s, a, t, m in kernels:
        gen = _to_tiles_block if kind == "to" else _from_tiles_block
        blocks.append(gen(f"{kind}_{name}", m, s, a, t))
        to, frm = (f"to_{name}", "0") if kind == "to" else ("0", f"from_{name}")
        table.append(f"    {{{to}, {frm}, {s}, {(a * t) ** 2}}},")
    max_p = max(s * s for _, _, s, *_ in kernels)
    max_r = max((a * t) ** 2 for *_, a, t, _ in kernels)
    src = "\n".join(head + [f"#define MAX_P {max_p}", f"#define MAX_R {max_r}"] + blocks
                    + [f"static const kernel_t KERNELS[] = {{\n" + "\n".join(table) + "\n};",
                       f"#define N_KERNELS {len(kernels)}", _DRIVER])
    return src, {name: (i, s, a, t) for i, (name, _, s, a, t, _) in enumerate(kernels)}


_lib: ctypes.CDLL | None = None
_maps: dict[str, tuple[int, int, int, int]] = {}  # name -> (index, S, A, T), set by `_build`
_tried = False


def _cpu_flags() -> str:
    """This CPU's feature flags (-march=native builds for them; a cache shared by other CPUs must not mix)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return ""


def _cache_dir() -> Path:
    return Path(os.environ.get("STUDIO_CACHE") or Path.home() / ".cache" / "gan-studio")


def compiler() -> str | None:
    """The C compiler the build uses: $CC, else cc or gcc on the PATH (None: the matmuls are used)."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _build() -> ctypes.CDLL | None:
    global _maps
    src, _maps = source()
    cc = compiler()
    if not cc:
        return None
    flags = ["-O3", "-march=native", "-shared", "-fPIC", "-fopenmp"]
    key = hashlib.sha256((src + cc + " ".join(flags) + sys.platform + _cpu_flags()).encode()).hexdigest()[:16]
    path = _cache_dir() / f"winograd_tiles_{key}.so"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            c_file, so_file = Path(tmp) / "tiles.c", Path(tmp) / "tiles.so"
            c_file.write_text(src)
            done = subprocess.run([cc, *flags, "-o", str(so_file), str(c_file)], capture_output=True, text=True)
            if done.returncode:
                warnings.warn(f"winograd_c: {cc} failed, using matmul transforms:\n{done.stderr[-1000:]}")
                return None
            os.replace(so_file, path)  # atomic: parallel ranks may build at once
    lib = ctypes.CDLL(str(path))
    p, i64 = ctypes.c_void_p, ctypes.c_long
    lib.tiles.argtypes = [ctypes.c_int, ctypes.c_int, p, p, p, i64, i64, ctypes.c_float, ctypes.c_int]
    lib.tiles.restype = ctypes.c_int
    return lib


def available() -> bool:
    """Whether the C transforms are built and loaded (built on the first call)."""
    global _lib, _tried
    if not _tried:
        _tried = True
        if os.environ.get("STUDIO_NO_C", "") not in ("", "0"):
            return False
        try:
            _lib = _build()
        except OSError as e:
            warnings.warn(f"winograd_c: could not build or load the C transforms ({e}); using matmuls")
            _lib = None
    return _lib is not None


def _call(to: bool, name: str, src: torch.Tensor, out: torch.Tensor, n: int, c: int, scale: float = 1.0,
          bias: torch.Tensor | None = None) -> torch.Tensor:
    assert _lib is not None
    rc = _lib.tiles(int(to), _maps[name][0], src.data_ptr(), None if bias is None else bias.data_ptr(), out.data_ptr(),
                    n, c, scale, torch.get_num_threads())
    if rc:
        raise RuntimeError(f"winograd_c: map {name} refused its arguments")
    return out


class _ToTiles(torch.autograd.Function):
    """scale * map `name` of x: [N, C, S, S] -> [A, A, T, T, N, C]; backward: its adjoint `adj`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, name: str, adj: str, scale: float) -> torch.Tensor:
        ctx.maps = name, adj, scale
        _, _, a, t = _maps[name]
        n, c = x.shape[:2]
        x = x.contiguous()
        return _call(True, name, x, x.new_empty(a, a, t, t, n, c), n, c, scale)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        name, adj, scale = ctx.maps
        return _FromTiles.apply(g, adj, name, None, scale), None, None, None


class _FromTiles(torch.autograd.Function):
    """scale * map `name` of m: [A, A, T, T, N, C] -> [N, C, S, S], + bias [C]; backward: its adjoint `adj`."""

    @staticmethod
    def forward(ctx, m: torch.Tensor, name: str, adj: str, bias: torch.Tensor | None, scale: float) -> torch.Tensor:
        ctx.maps = name, adj, scale
        ctx.has_bias = bias is not None
        s = _maps[name][1]
        n, c = m.shape[-2:]
        m = m.contiguous()
        b = None if bias is None else bias.detach().contiguous()
        return _call(False, name, m, m.new_empty(n, c, s, s), n, c, scale, b)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        name, adj, scale = ctx.maps
        grad_bias = g.sum((0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[3] else None
        return _ToTiles.apply(g, adj, name, scale), None, None, grad_bias, None


class _KernelTiles(torch.autograd.Function):
    """G g G^T of every 3x3 kernel: w [O, C, 3, 3] -> u [36, O, C]. The batched matmul reads u
    transposed, so the gradient arrives as the transpose of a contiguous [36, C, O]: the backward
    maps that as it lies (to [C, O, 3, 3], returned as its transpose) instead of first copying it
    the other way round, as a reshape of the gradient would."""

    @staticmethod
    def forward(ctx, w: torch.Tensor) -> torch.Tensor:
        o, c = w.shape[:2]
        w = w.contiguous()
        return _call(True, "kernel", w, w.new_empty(36, o, c), o, c)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        if not g.is_contiguous() and g.transpose(1, 2).is_contiguous():
            gt = g.transpose(1, 2)  # [36, C, O]
            return _FromTiles.apply(gt.view(6, 6, 1, 1, *gt.shape[1:]), "kernel_adj", "kernel", None, 1.0).transpose(0, 1)
        return _FromTiles.apply(g.reshape(6, 6, 1, 1, *g.shape[1:]), "kernel_adj", "kernel", None, 1.0)


def _check(t: torch.Tensor, dims: int) -> None:
    if not available():
        raise RuntimeError("winograd_c: the C transforms are not built here (see available()); use winograd.conv3x3")
    if t.dtype != torch.float32 or t.device.type != "cpu" or t.dim() != dims:
        raise ValueError(f"winograd_c takes float32 CPU tensors of {dims} dimensions, got {t.dtype} {t.device} "
                         f"{list(t.shape)}")


def to_tiles(x: torch.Tensor, name: str) -> torch.Tensor:
    """Map `name` ("in8": B^T d B) of x [N, C, S, S]: [A, A, T, T, N, C], differentiable (see `available`)."""
    _check(x, 4)
    s = _maps[name][1]
    if x.shape[-2:] != (s, s):
        raise ValueError(f"map {name} takes [N, C, {s}, {s}], got {list(x.shape)}")
    return _ToTiles.apply(x, name, name + "_adj", 1.0)


def kernel_tiles(w: torch.Tensor) -> torch.Tensor:
    """G g G^T of every 3x3 kernel of w [O, C, 3, 3]: [36, O, C], differentiable."""
    _check(w, 4)
    if w.shape[-2:] != (3, 3):
        raise ValueError(f"kernel_tiles takes [O, C, 3, 3], got {list(w.shape)}")
    return _KernelTiles.apply(w)


def from_tiles(m: torch.Tensor, name: str, bias: torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
    """scale * map `name` ("out8": A^T m A) of m [A, A, T, T, N, C], + bias [C]: [N, C, S, S], differentiable."""
    _check(m, 6)
    _, _, a, t = _maps[name]
    if m.shape[:4] != (a, a, t, t) or (bias is not None and bias.shape != (m.shape[-1],)):
        raise ValueError(f"map {name} takes [{a}, {a}, {t}, {t}, N, C] and a bias [C], got {list(m.shape)}"
                         f" and {None if bias is None else list(bias.shape)}")
    return _FromTiles.apply(m, name, name + "_adj", bias, float(scale))


__all__ = ["available", "compiler", "from_tiles", "kernel_tiles", "source", "to_tiles"]
