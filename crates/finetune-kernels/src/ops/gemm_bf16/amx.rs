//! The AMX micro-kernel: `tdpbf16ps` on 16 × 16 f32 accumulator tiles (Intel Sapphire Rapids
//! and later), written as inline assembly (the tile intrinsics are not stable Rust).
//!
//! One call computes a 32 × 32 block of the product from two packed lhs panels and two
//! packed rhs panels (`pack.rs`): four accumulator tiles (`tmm0`–`tmm3`), two lhs tiles
//! (`tmm4`, `tmm5`) and two rhs tiles (`tmm6`, `tmm7`) per k-block of 32.
//!
//! Linux hands out the 8 KiB of tile state only to a process that asks for it
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); [`available`] asks once.

use super::pack::TILE;
use std::arch::asm;
use std::sync::OnceLock;

/// The tile configuration `ldtilecfg` reads (palette 1; every tile used is 16 rows × 64 bytes).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

static CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// Whether this CPU has AMX-BF16 and the kernel lets this process use the tiles (asked once).
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| cpu_has_amx_bf16() && request_tile_data())
}

fn cpu_has_amx_bf16() -> bool {
    use std::arch::x86_64::__cpuid_count;
    // Leaf 7 exists when the highest leaf is at least 7.
    if __cpuid_count(0, 0).eax < 7 {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    // EDX bit 22: AMX-BF16, bit 24: AMX-TILE.
    edx & (1 << 22) != 0 && edx & (1 << 24) != 0
}

#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain system call with two integer arguments; it only changes this
    // process's permission to use the AMX tile state.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
    false
}

/// Loads the tile configuration on this thread (once per batch of [`block`] calls).
///
/// # Safety
/// [`available`] must have returned true.
#[inline]
pub unsafe fn configure() {
    asm!("ldtilecfg [{0}]", in(reg) &CONFIG as *const TileConfig, options(nostack, readonly));
}

/// Releases this thread's tile state (after its [`block`] calls).
///
/// # Safety
/// [`available`] must have returned true.
#[inline]
pub unsafe fn release() {
    asm!("tilerelease", options(nostack, nomem));
}

/// The 32 × 32 f32 block `Σ_b A(p, b)·B(q, b)` over `kb` k-blocks into `out` (four 16 × 16
/// row-major tiles: rows 0–15 × columns 0–15, rows 0–15 × 16–31, rows 16–31 × 0–15, rows
/// 16–31 × 16–31), from two lhs panels at `a` (`a` and `a + kb·TILE`) and two rhs panels at
/// `b` (likewise).
///
/// # Safety
/// [`configure`] must have run on this thread; `a` and `b` must each hold `2·kb·TILE`
/// elements.
#[inline]
pub unsafe fn block(kb: usize, a: *const u16, b: *const u16, out: &mut [f32; 4 * 256]) {
    zero();
    products(kb, a, b);
    let o = out.as_mut_ptr();
    store([o, o.add(256), o.add(512), o.add(768)], 16);
}

/// The same block added to (`accumulate`) or written over the 32 × 32 f32 block of a
/// row-major matrix at `c` whose rows are `ld` elements apart, with no buffer in between.
///
/// # Safety
/// As [`block`]; `c` must address a writable 32 × 32 block with row stride `ld`.
#[inline]
pub unsafe fn block_into(
    kb: usize,
    a: *const u16,
    b: *const u16,
    c: *mut f32,
    ld: usize,
    accumulate: bool,
) {
    let tiles = [c, c.add(16), c.add(16 * ld), c.add(16 * ld + 16)];
    if accumulate {
        asm!(
            "tileloadd tmm0, [{c0} + {s}]",
            "tileloadd tmm1, [{c1} + {s}]",
            "tileloadd tmm2, [{c2} + {s}]",
            "tileloadd tmm3, [{c3} + {s}]",
            c0 = in(reg) tiles[0],
            c1 = in(reg) tiles[1],
            c2 = in(reg) tiles[2],
            c3 = in(reg) tiles[3],
            s = in(reg) ld * 4,
            options(nostack, readonly),
        );
    } else {
        zero();
    }
    products(kb, a, b);
    store(tiles, ld);
}

/// Zeroes the accumulators `tmm0`–`tmm3`.
#[inline(always)]
unsafe fn zero() {
    asm!(
        "tilezero tmm0",
        "tilezero tmm1",
        "tilezero tmm2",
        "tilezero tmm3",
        options(nostack, nomem)
    );
}

/// Adds the products of `kb` k-blocks of two lhs panels (at `a`, `a + kb·TILE`) and two rhs
/// panels (at `b`, `b + kb·TILE`) to `tmm0`–`tmm3`.
#[inline(always)]
unsafe fn products(kb: usize, a: *const u16, b: *const u16) {
    const STRIDE: usize = 64;
    let (a1, b1) = (a.add(kb * TILE), b.add(kb * TILE));
    for i in 0..kb {
        let off = i * TILE;
        asm!(
            "tileloadd tmm4, [{a0} + {s}]",
            "tileloadd tmm5, [{a1} + {s}]",
            "tileloadd tmm6, [{b0} + {s}]",
            "tileloadd tmm7, [{b1} + {s}]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a0 = in(reg) a.add(off),
            a1 = in(reg) a1.add(off),
            b0 = in(reg) b.add(off),
            b1 = in(reg) b1.add(off),
            s = in(reg) STRIDE,
            options(nostack, readonly),
        );
    }
}

/// Stores `tmm0`–`tmm3` (rows 0–15 × columns 0–15, 0–15 × 16–31, 16–31 × 0–15, 16–31 ×
/// 16–31) at the four addresses, rows `ld` f32 apart.
#[inline(always)]
unsafe fn store(tiles: [*mut f32; 4], ld: usize) {
    asm!(
        "tilestored [{o0} + {s}], tmm0",
        "tilestored [{o1} + {s}], tmm1",
        "tilestored [{o2} + {s}], tmm2",
        "tilestored [{o3} + {s}], tmm3",
        o0 = in(reg) tiles[0],
        o1 = in(reg) tiles[1],
        o2 = in(reg) tiles[2],
        o3 = in(reg) tiles[3],
        s = in(reg) ld * 4,
        options(nostack),
    );
}
