//! Per-thread scratch buffers for a kernel's temporaries (im2col columns, gathered output
//! gradients), kept between calls so that a training step does not allocate, zero and
//! page-fault its large temporaries in afresh at every layer.
//!
//! A [`Scratch`] is lent from the calling thread's pool and goes back to it when dropped. Its
//! contents on loan are whatever the previous borrower left: a kernel must write every element
//! it later reads (the conv2d temporaries are written whole by im2col, a gather or a GEMM that
//! does not read its destination).

use std::any::Any;
use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use super::kernel::Real;

/// Buffers a thread keeps between loans; more are freed on return.
const KEPT: usize = 4;

thread_local! {
    static POOL: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` elements lent from this thread's pool.
pub(crate) struct Scratch<T: Real> {
    buf: Vec<T>,
    len: usize,
}

impl<T: Real> Scratch<T> {
    /// Lends the smallest pooled `Vec<T>` that holds `len` elements, or a new one (a buffer
    /// that has become too small leaves the pool when a larger one comes back, see `Drop`).
    pub fn new(len: usize) -> Self {
        if len == 0 {
            return Scratch {
                buf: Vec::new(),
                len,
            };
        }
        let pooled = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let best = pool
                .iter()
                .enumerate()
                .filter_map(|(i, b)| b.downcast_ref::<Vec<T>>().map(|v| (i, v.len())))
                .filter(|&(_, l)| l >= len)
                .min_by_key(|&(_, l)| l);
            best.and_then(|(i, _)| pool.swap_remove(i).downcast::<Vec<T>>().ok())
        });
        let buf = match pooled {
            Ok(Some(b)) => *b,
            _ => vec![T::ZERO; len],
        };
        Scratch { buf, len }
    }
}

impl<T: Real> Deref for Scratch<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[..self.len]
    }
}

impl<T: Real> DerefMut for Scratch<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[..self.len]
    }
}

impl<T: Real> Drop for Scratch<T> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            return;
        }
        // During thread teardown the pool may be gone: the buffer is then simply freed.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            pool.push(Box::new(buf));
            if pool.len() > KEPT {
                // Free the smallest: the large ones are those worth keeping.
                let smallest = (0..pool.len())
                    .min_by_key(|&i| buffer_bytes(&*pool[i]))
                    .unwrap_or(0);
                pool.swap_remove(smallest);
            }
        });
    }
}

/// The size of a pooled buffer, for choosing which to free.
fn buffer_bytes(b: &dyn Any) -> usize {
    if let Some(v) = b.downcast_ref::<Vec<f32>>() {
        v.len() * 4
    } else if let Some(v) = b.downcast_ref::<Vec<f64>>() {
        v.len() * 8
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_lent_again_without_reallocating() {
        let ptr = {
            let mut a = Scratch::<f32>::new(1000);
            a.fill(3.0);
            a.as_ptr()
        };
        let b = Scratch::<f32>::new(500);
        assert_eq!(b.len(), 500);
        assert_eq!(b.as_ptr(), ptr, "the pooled buffer should be reused");
        // Two loans at once get distinct buffers.
        let c = Scratch::<f32>::new(500);
        assert_ne!(c.as_ptr(), b.as_ptr());
        // A request larger than any pooled buffer gets a new one.
        drop((b, c));
        let d = Scratch::<f32>::new(5000);
        assert_eq!(d.len(), 5000);
        // Other element types have pools of their own.
        let e = Scratch::<f64>::new(10);
        assert_eq!(e.len(), 10);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_buffers() {
        let loans: Vec<Scratch<f32>> = (0..10).map(|i| Scratch::new(100 + i)).collect();
        drop(loans);
        let mut kept: Vec<usize> =
            POOL.with(|p| p.borrow().iter().map(|b| buffer_bytes(&**b)).collect());
        kept.sort_unstable();
        // The largest ones stay: 106..=109 floats.
        assert_eq!(kept, (106..110).map(|n| n * 4).collect::<Vec<_>>());
    }
}
