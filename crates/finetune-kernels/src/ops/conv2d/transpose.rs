//! Tiled transposes: the weight gradient's `dWᵀ` back to `dW`, and the tap GEMMs' pixel-major
//! copies of images and gradients.

use std::mem::MaybeUninit;

use crate::ops::kernel::Real;
use crate::ops::simd::multiversion;

/// `a` (`rows×cols`, row-major) transposed.
pub(super) fn transpose<T: Real>(a: &[T], rows: usize, cols: usize) -> Vec<T> {
    let len = rows * cols;
    let mut out: Vec<T> = Vec::with_capacity(len);
    transpose_into(
        a,
        cols,
        rows,
        cols,
        &mut out.spare_capacity_mut()[..len],
        rows,
    );
    // SAFETY: transpose_into wrote element j·rows + i for every i < rows, j < cols: all `len`.
    unsafe { out.set_len(len) };
    out
}

/// Tile side of [`transpose_into`].
const TILE: usize = 16;

multiversion! {
    /// `dst[j·dst_ld + i] = src[i·src_ld + j]` for `i < rows`, `j < cols`, tile by tile so that
    /// both sides are read and written a cache line at a time.
    ///
    /// Panics if either slice is too short for these extents (checked once, up front).
    pub(super) fn transpose_into<T: Real>(
        src: &[T],
        src_ld: usize,
        rows: usize,
        cols: usize,
        dst: &mut [MaybeUninit<T>],
        dst_ld: usize,
    ) {
        if rows == 0 || cols == 0 {
            return;
        }
        assert!((rows - 1) * src_ld + cols <= src.len(), "transpose: source too short");
        assert!((cols - 1) * dst_ld + rows <= dst.len(), "transpose: destination too short");
        for i0 in (0..rows).step_by(TILE) {
            for j0 in (0..cols).step_by(TILE) {
                for j in j0..(j0 + TILE).min(cols) {
                    for i in i0..(i0 + TILE).min(rows) {
                        // SAFETY: i < rows and j < cols, so both indices are within the
                        // extents checked above.
                        unsafe {
                            dst.get_unchecked_mut(j * dst_ld + i)
                                .write(*src.get_unchecked(i * src_ld + j));
                        }
                    }
                }
            }
        }
    }
}
