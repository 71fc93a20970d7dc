//! A record of the fused ops of one training forward, and a backward pass over it that keeps
//! each first gradient instead of adding it to a tensor of zeros.
//!
//! candle's `Tensor::backward` accumulates every gradient it computes, for activations and
//! parameters alike, into a fresh zero tensor (`zeros_like`, then `add`): four passes over
//! memory the size of the whole forward's activations, on top of the backward kernels.
//! On a ResNet-50 step that is about a tenth of the time.
//!
//! While a [`Recording`] is live on a thread, every fused op of [`crate::ops`] applied there
//! also appends a node (the op, its inputs, its output) to the recording. Forward results and
//! candle's own graph are unchanged, so code that never records, or calls candle's
//! `backward` itself, sees no difference. [`Recording::backward`] then runs in three parts:
//! 1. **Above the cuts, by candle.** A model marks where its fused part ends with [`cut`] (a
//!    ResNet's last feature map, before pooling, head and loss). While recording, `cut`
//!    returns a copy of the tensor as a leaf variable, so candle's backward from the loss
//!    stops there and is cheap. Without a cut, or when the loss is itself a node's output,
//!    this part is skipped (and with neither, candle does the whole backward).
//! 2. **The tape.** From the cut points' gradients, nodes are visited in reverse order of
//!    recording (a topological order: an op is recorded after the ops that made its inputs).
//!    Each node calls its op's own backward; a gradient arriving at a tensor that has none
//!    yet is stored as it is, and a second one is added to it.
//! 3. **Below, by candle again.** A gradient left at a tensor that is neither a variable nor
//!    a node's output was made by an op the tape does not know (a reshape, a stock candle op,
//!    a dtype cast); it is handed to candle's backward through the surrogate
//!    `Σ sum(t · g)`, whose gradient at each such `t` is `g`, and candle carries it on.
//!
//! Every path from the loss to a parameter is therefore taken exactly once: wholly on the
//! tape, or on the tape down to the first op it does not know and by candle from there. The
//! sums are those candle forms, in an order that can differ only where three or more
//! gradients meet one tensor. [`BackwardReport`] says how much ran where, so a model whose
//! tape is complete can be tested to stay complete.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::marker::PhantomData;

use candle_core::backprop::GradStore;
use candle_core::{CustomOp1, CustomOp2, CustomOp3, DType, Tensor, TensorId, Var};

use crate::Result;

type Backward =
    Box<dyn Fn(&[Tensor], &Tensor, &Tensor) -> candle_core::Result<Vec<Option<Tensor>>>>;

/// One recorded op: its inputs, its output, and its backward.
struct Node {
    args: Vec<Tensor>,
    out: Tensor,
    backward: Backward,
}

/// What one live recording holds.
#[derive(Default)]
struct Frame {
    nodes: Vec<Node>,
    /// `(tensor, leaf copy)` of each [`cut`].
    cuts: Vec<(Tensor, Tensor)>,
}

thread_local! {
    /// The live recordings of this thread, innermost last (only the innermost records).
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// A live recording of the fused ops applied on this thread; see the module docs. Dropping it
/// without [`Self::backward`] discards it.
pub struct Recording {
    depth: usize,
    /// Bound to the thread whose ops it records.
    _thread: PhantomData<*const ()>,
}

/// Where the gradients of one [`Recording::backward`] were computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackwardReport {
    /// Nodes of the tape that a gradient reached and that ran their backward.
    pub tape_nodes: usize,
    /// Tensors whose gradient the tape handed on to candle's backward (part 3 of the module
    /// docs); 0 when the tape covered everything below the cuts.
    pub handed_to_candle: usize,
    /// Whether candle ran the whole backward (no cut and the loss is no node's output).
    pub all_candle: bool,
}

impl Recording {
    /// Starts recording the fused ops applied on this thread.
    pub fn start() -> Self {
        let depth = FRAMES.with(|f| {
            let mut frames = f.borrow_mut();
            frames.push(Frame::default());
            frames.len()
        });
        Self {
            depth,
            _thread: PhantomData,
        }
    }

    /// Stops recording and returns what was recorded (and any recordings started inside).
    fn take(&self) -> Frame {
        FRAMES.with(|f| {
            let mut frames = f.borrow_mut();
            let mut frame = Frame::default();
            while frames.len() >= self.depth {
                if let Some(inner) = frames.pop() {
                    frame = inner;
                }
            }
            frame
        })
    }

    /// The gradient of `loss` with respect to every variable it depends on, as candle's
    /// `loss.backward()` gives it.
    pub fn backward(self, loss: &Tensor) -> Result<GradStore> {
        Ok(self.backward_report(loss)?.0)
    }

    /// [`Self::backward`], with where it ran.
    pub fn backward_report(self, loss: &Tensor) -> Result<(GradStore, BackwardReport)> {
        let Frame { nodes, cuts } = self.take();
        let mut report = BackwardReport::default();
        // A cut's leaf copy stands for the tensor it was cut from.
        let originals: HashMap<TensorId, &Tensor> =
            cuts.iter().map(|(t, leaf)| (leaf.id(), t)).collect();
        let mut pending = Pending::default();
        let mut store = if nodes.iter().any(|n| n.out.id() == loss.id()) {
            pending.add(loss, loss.ones_like()?)?;
            GradStore::default()
        } else if !cuts.is_empty() {
            let mut store = loss.backward()?;
            for (t, leaf) in &cuts {
                if let Some(g) = store.remove(leaf) {
                    pending.add(t, g)?;
                }
            }
            store
        } else {
            report.all_candle = true;
            return Ok((loss.backward()?, report));
        };
        for node in nodes.into_iter().rev() {
            let Some((_, grad)) = pending.0.remove(&node.out.id()) else {
                continue;
            };
            report.tape_nodes += 1;
            let grads = (node.backward)(&node.args, &node.out, &grad.detach())?;
            for (arg, g) in node.args.iter().zip(grads) {
                if let Some(g) = g.filter(|_| arg.track_op()) {
                    pending.add(originals.get(&arg.id()).copied().unwrap_or(arg), g)?;
                }
            }
        }
        let mut surrogate: Option<Tensor> = None;
        for (t, g) in pending.0.into_values() {
            if t.is_variable() {
                let g = match store.remove(&t) {
                    Some(prev) => prev.add(&g)?,
                    None => g,
                };
                store.insert(&t, g);
            } else {
                report.handed_to_candle += 1;
                let s = t.mul(&g.detach())?.sum_all()?;
                surrogate = Some(match surrogate {
                    Some(acc) => acc.add(&s)?,
                    None => s,
                });
            }
        }
        if let Some(s) = surrogate {
            store.extend(s.backward()?)?;
        }
        Ok((store, report))
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// Gradients that have reached a tensor whose own backward has not run yet: `id → (tensor,
/// gradient)`.
#[derive(Default)]
struct Pending(HashMap<TensorId, (Tensor, Tensor)>);

impl Pending {
    /// Adds `g` to the gradient of `t`, or stores it when `t` has none yet.
    fn add(&mut self, t: &Tensor, g: Tensor) -> Result<()> {
        match self.0.entry(t.id()) {
            Entry::Occupied(mut e) => {
                let sum = e.get().1.add(&g)?;
                e.get_mut().1 = sum;
            }
            Entry::Vacant(e) => {
                e.insert((t.clone(), g));
            }
        }
        Ok(())
    }
}

/// Whether a [`Recording`] is live on this thread.
pub fn is_recording() -> bool {
    FRAMES.with(|f| !f.borrow().is_empty())
}

/// Where a model's recorded part ends (see the module docs): while recording, a leaf copy of
/// `t` that the rest of the forward should use; otherwise `t` itself. Only CPU tensors in the
/// autograd graph are cut (the fused ops run on CPU).
pub fn cut(t: &Tensor) -> Result<Tensor> {
    if !t.track_op() || t.is_variable() || !t.device().is_cpu() || !is_recording() {
        return Ok(t.clone());
    }
    let leaf = Var::from_tensor(&t.detach())?.into_inner();
    FRAMES.with(|f| {
        if let Some(frame) = f.borrow_mut().last_mut() {
            frame.cuts.push((t.clone(), leaf.clone()));
        }
    });
    Ok(leaf)
}

/// How two backward passes' gradients of a store's trainable parameters compare (see
/// [`compare`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GradComparison {
    /// Parameters that have a gradient in both passes, with identical bits.
    pub identical: usize,
    /// Parameters whose gradients differ, or that have a gradient in only one pass.
    pub differing: Vec<String>,
}

/// Compares, bit for bit, the gradients `recorded` gives the named variables `params` (a
/// model's trainable parameters) with those of `reference` (for instance a recorded backward
/// against candle's own, to check that a model's tape is faithful).
pub fn compare(
    params: impl IntoIterator<Item = (String, candle_core::Var)>,
    reference: &GradStore,
    recorded: &GradStore,
) -> Result<GradComparison> {
    let mut out = GradComparison::default();
    for (name, var) in params {
        match (
            reference.get(var.as_tensor()),
            recorded.get(var.as_tensor()),
        ) {
            (None, None) => {}
            (Some(want), Some(got)) => {
                // f32 and f16 widen to f64 exactly, so equal bits there are equal bits here.
                let bits = |t: &Tensor| -> Result<Vec<u64>> {
                    let v: Vec<f64> = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?;
                    Ok(v.into_iter().map(f64::to_bits).collect())
                };
                if want.dims() == got.dims() && bits(want)? == bits(got)? {
                    out.identical += 1;
                } else {
                    out.differing.push(name);
                }
            }
            _ => out.differing.push(name),
        }
    }
    Ok(out)
}

/// Appends a node when recording and `out` is in the graph.
fn push(args: Vec<Tensor>, out: &Tensor, backward: Backward) {
    if !out.track_op() {
        return;
    }
    FRAMES.with(|f| {
        if let Some(frame) = f.borrow_mut().last_mut() {
            frame.nodes.push(Node {
                args,
                out: out.clone(),
                backward,
            });
        }
    });
}

/// `a + b` (one shape), recorded: candle's add, whose backward hands the gradient to both.
/// For the residual sums between fused ops (through [`crate::ops::OpSet::add`]).
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = (a + b)?;
    if is_recording() {
        push(
            vec![a.clone(), b.clone()],
            &out,
            Box::new(|_, _, g| Ok(vec![Some(g.clone()), Some(g.clone())])),
        );
    }
    Ok(out)
}

/// `x.apply_op1(op)`, recorded.
pub(crate) fn apply_op1<C: CustomOp1 + Clone + Send + Sync + 'static>(
    x: &Tensor,
    op: C,
) -> Result<Tensor> {
    let out = x.apply_op1(op.clone())?;
    if is_recording() {
        push(
            vec![x.clone()],
            &out,
            Box::new(move |a, out, g| Ok(vec![op.bwd(&a[0], out, g)?])),
        );
    }
    Ok(out)
}

/// `a.apply_op2(b, op)`, recorded.
pub(crate) fn apply_op2<C: CustomOp2 + Clone + Send + Sync + 'static>(
    a: &Tensor,
    b: &Tensor,
    op: C,
) -> Result<Tensor> {
    let out = a.apply_op2(b, op.clone())?;
    if is_recording() {
        push(
            vec![a.clone(), b.clone()],
            &out,
            Box::new(move |a, out, g| {
                let (ga, gb) = op.bwd(&a[0], &a[1], out, g)?;
                Ok(vec![ga, gb])
            }),
        );
    }
    Ok(out)
}

/// `a.apply_op3(b, c, op)`, recorded.
pub(crate) fn apply_op3<C: CustomOp3 + Clone + Send + Sync + 'static>(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    op: C,
) -> Result<Tensor> {
    let out = a.apply_op3(b, c, op.clone())?;
    if is_recording() {
        push(
            vec![a.clone(), b.clone(), c.clone()],
            &out,
            Box::new(move |a, out, g| {
                let (ga, gb, gc) = op.bwd(&a[0], &a[1], &a[2], out, g)?;
                Ok(vec![ga, gb, gc])
            }),
        );
    }
    Ok(out)
}
