//! Reptile against computations done by hand: the outer update's closed form, whole meta
//! steps of a model whose inner SGD steps have a closed-form gradient, the episode sampler's
//! guarantees, the settings' checks and the few-shot accuracy's interval.

use candle_core::{DType, Device, Tensor};
use finetune_core::{OptimizerKind, ParamStore, Result, Rng, TensorKind};
use finetune_train::reptile::{
    self, EpisodeSampler, FewShotAccuracy, InnerLoop, MetaLrSchedule, ReptileConfig, TaskAverage,
    Weights,
};
use finetune_train::{Batch, BatchSource, ParamLayout, Problem, TrainModel};
use std::path::Path;

const D: usize = 2;

/// `logits = x ⊙ w` (`w` is `body.w`, one weight per feature), loss
/// `½ · mean_b Σ_j (x_bj w_j − y_b)²` with `y_b` the task label as a number: a quadratic whose
/// gradient the tests write by hand. `head.b` is the head (zeroed per task, unused).
struct Quadratic {
    store: ParamStore,
}

impl Quadratic {
    fn new(w: &[f32]) -> Self {
        let store = ParamStore::new();
        let dev = Device::Cpu;
        store
            .insert(
                "body.w",
                &Tensor::new(w, &dev).unwrap(),
                TensorKind::Parameter,
            )
            .unwrap();
        store
            .insert(
                "head.b",
                &Tensor::new(&[0.5f32, -0.5], &dev).unwrap(),
                TensorKind::Parameter,
            )
            .unwrap();
        Self { store }
    }

    fn w(&self) -> Vec<f64> {
        let t = self.store.get("body.w").unwrap();
        t.to_dtype(DType::F64).unwrap().to_vec1().unwrap()
    }
}

impl TrainModel for Quadratic {
    type Inputs = Tensor;

    fn store(&self) -> &ParamStore {
        &self.store
    }

    fn forward_t(&self, x: &Tensor, _train: bool) -> Result<Tensor> {
        let w = self.store.get("body.w")?.unsqueeze(0)?;
        Ok(x.broadcast_mul(&w)?)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, _ls: f64) -> Result<Tensor> {
        let y = targets.to_dtype(DType::F32)?.unsqueeze(1)?;
        let b = logits.dim(0)? as f64;
        Ok((logits.broadcast_sub(&y)?.sqr()?.sum_all()? * (0.5 / b))?)
    }

    fn problem(&self) -> Problem {
        Problem::Regression
    }

    fn layout(&self) -> ParamLayout {
        ParamLayout::new(["head.*"], |_| None)
    }

    fn export(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }
}

/// 24 points of 4 classes (`i % 4`), features that differ per point.
struct Points;

fn features(i: usize) -> [f64; D] {
    [(i % 7 + 1) as f64 / 7.0, (i % 5 + 1) as f64 / 5.0]
}

fn labels() -> Vec<usize> {
    (0..24).map(|i| i % 4).collect()
}

impl BatchSource<Tensor> for Points {
    fn len(&self) -> usize {
        24
    }

    fn batch(&self, indices: &[usize], _epoch: u64, _train: bool) -> Result<Batch<Tensor>> {
        let x: Vec<f32> = indices
            .iter()
            .flat_map(|&i| features(i).map(|v| v as f32))
            .collect();
        Ok(Batch {
            inputs: Tensor::from_vec(x, (indices.len(), D), &Device::Cpu)?,
            targets: Tensor::zeros(indices.len(), DType::U32, &Device::Cpu)?,
            teacher: None,
        })
    }
}

fn names() -> Vec<String> {
    (0..4).map(|c| format!("c{c}")).collect()
}

/// `steps` plain SGD steps on the support set, by hand: `∂/∂w_j = mean_b (x_bj w_j − y_b) x_bj`.
fn sgd_by_hand(w: &[f64], support: &[(usize, u32)], lr: f64, steps: usize) -> Vec<f64> {
    let mut w = w.to_vec();
    for _ in 0..steps {
        let mut g = [0.0; D];
        for &(i, y) in support {
            let x = features(i);
            for j in 0..D {
                g[j] += (x[j] * w[j] - y as f64) * x[j] / support.len() as f64;
            }
        }
        for j in 0..D {
            w[j] -= lr * g[j];
        }
    }
    w
}

fn config(meta_steps: usize, meta_batch: usize, meta_lr: f64, s: MetaLrSchedule) -> ReptileConfig {
    ReptileConfig {
        ways: 2,
        shots: 2,
        query_shots: 1,
        inner_steps: 3,
        inner_lr: 0.1,
        inner_optimizer: OptimizerKind::Sgd,
        meta_steps,
        meta_lr,
        meta_lr_schedule: s,
        meta_batch,
        logging_steps: 1,
        seed: 9,
    }
}

fn assert_close(got: &[f64], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "got {got:?}, want {want:?}");
    }
}

#[test]
fn the_outer_update_is_phi_plus_eps_times_the_mean_move() {
    let store = ParamStore::new();
    let t = |v: &[f32]| Tensor::new(v, &Device::Cpu).unwrap();
    store
        .insert("w", &t(&[1.0, 2.0]), TensorKind::Parameter)
        .unwrap();
    let count = |n: u32| Tensor::new(&[n], &Device::Cpu).unwrap();
    store.insert("n", &count(4), TensorKind::Buffer).unwrap();
    let all = |_: &str| true;
    let phi = Weights::capture(&store, &all).unwrap();
    let mut avg = TaskAverage::new();
    for (w, n) in [([3.0f32, 2.0], 7), ([1.0, 6.0], 9)] {
        store.set("w", &t(&w)).unwrap();
        store.set("n", &count(n)).unwrap();
        avg.add(&Weights::capture(&store, &all).unwrap()).unwrap();
    }
    // The captures are copies: the store's later values do not reach them.
    assert_eq!(phi.tensors()[0].1.to_vec1::<f32>().unwrap(), [1.0, 2.0]);
    let stepped = |eps| {
        avg.step(&phi, eps).unwrap().tensors()[0]
            .1
            .to_vec1::<f32>()
            .unwrap()
    };
    // mean W = (2, 4): φ + ε((2, 4) − (1, 2)).
    assert_eq!(stepped(0.5), [1.5, 3.0]);
    assert_eq!(stepped(1.0), [2.0, 4.0]);
    // An integer buffer keeps φ's value.
    let n = avg.step(&phi, 1.0).unwrap().tensors()[1]
        .1
        .to_vec1::<u32>()
        .unwrap();
    assert_eq!(n, [4]);
    let mut one = TaskAverage::new();
    one.add(&Weights::capture(&store, &all).unwrap()).unwrap();
    let to_w = one.step(&phi, 1.0).unwrap();
    assert_eq!(to_w.tensors()[0].1.to_vec1::<f32>().unwrap(), [1.0, 6.0]);
}

#[test]
fn one_task_and_meta_lr_one_gives_the_inner_loop_result() {
    let c = config(1, 1, 1.0, MetaLrSchedule::Constant);
    let sampler = EpisodeSampler::new(&labels(), &names(), &[0, 1, 2, 3], 2, 2, 1).unwrap();
    let episode = sampler.sample(&mut Rng::seed_from_u64(c.seed));
    let phi = [0.3, -0.2];
    let model = Quadratic::new(&phi.map(|v| v as f32));
    reptile::meta_train(&model, &Points, &sampler, &c, &mut |_| {}).unwrap();
    let want = sgd_by_hand(&phi, &episode.support, 0.1, 3);
    assert!(want != phi.to_vec(), "the inner loop moved the weights");
    assert_close(&model.w(), &want);
    // The head ends zeroed.
    let head = model.store.get("head.b").unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(head, [0.0, 0.0]);
}

#[test]
fn meta_steps_follow_the_annealed_reptile_recursion() {
    let c = config(2, 2, 0.5, MetaLrSchedule::Linear);
    let sampler = EpisodeSampler::new(&labels(), &names(), &[0, 1, 2, 3], 2, 2, 1).unwrap();
    let mut phi = vec![0.3, -0.2];
    let model = Quadratic::new(&[0.3, -0.2]);
    reptile::meta_train(&model, &Points, &sampler, &c, &mut |_| {}).unwrap();
    // By hand: the episodes in the order the run draws them, ε = 0.5 · (1 − t/2).
    let mut rng = Rng::seed_from_u64(c.seed);
    for t in 0..2 {
        let eps = 0.5 * (1.0 - t as f64 / 2.0);
        let adapted: Vec<Vec<f64>> = (0..2)
            .map(|_| sgd_by_hand(&phi, &sampler.sample(&mut rng).support, 0.1, 3))
            .collect();
        phi = (0..D)
            .map(|j| phi[j] + eps * ((adapted[0][j] + adapted[1][j]) / 2.0 - phi[j]))
            .collect();
    }
    assert_close(&model.w(), &phi);
    assert_eq!(c.meta_lr_at(0), 0.5);
    assert_eq!(c.meta_lr_at(1), 0.25);
}

#[test]
fn episodes_hold_distinct_allowed_classes_disjoint_support_and_query() {
    let labels: Vec<usize> = (0..60).map(|i| i % 6).collect();
    let names: Vec<String> = (0..6).map(|c| c.to_string()).collect();
    let allowed = [0, 2, 3, 5];
    let sampler = EpisodeSampler::new(&labels, &names, &allowed, 3, 2, 4).unwrap();
    let mut rng = Rng::seed_from_u64(1);
    let mut first_classes = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let e = sampler.sample(&mut rng);
        assert_eq!(e.classes.len(), 3);
        let mut distinct = e.classes.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "{:?}", e.classes);
        assert!(e.classes.iter().all(|c| allowed.contains(c)));
        first_classes.insert(e.classes[0]);
        for (set, per_class) in [(&e.support, 2), (&e.query, 4)] {
            assert_eq!(set.len(), 3 * per_class);
            for label in 0..3u32 {
                let of: Vec<_> = set.iter().filter(|(_, l)| *l == label).collect();
                assert_eq!(of.len(), per_class);
                // Task label j is the class drawn j-th.
                assert!(of
                    .iter()
                    .all(|(i, _)| labels[*i] == e.classes[label as usize]));
            }
        }
        let support: std::collections::BTreeSet<_> = e.support.iter().map(|s| s.0).collect();
        assert_eq!(
            support.len(),
            e.support.len(),
            "no image twice in the support"
        );
        assert!(e.query.iter().all(|(i, _)| !support.contains(i)));
    }
    // The labels are remapped in a random order: label 0 is not always the same class.
    assert!(first_classes.len() > 1, "{first_classes:?}");
    let draw = |seed| sampler.sample(&mut Rng::seed_from_u64(seed));
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
}

#[test]
fn bad_episode_shapes_are_one_line_naming_the_setting() {
    let labels: Vec<usize> = (0..12).map(|i| i % 3).collect();
    let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let err = |ways, shots, query, allowed: &[usize]| {
        EpisodeSampler::new(&labels, &names, allowed, ways, shots, query)
            .unwrap_err()
            .to_string()
    };
    assert!(err(1, 1, 1, &[0, 1, 2]).contains("`ways` must be at least 2"));
    assert!(err(2, 0, 1, &[0, 1, 2]).contains("`shots` must be at least 1"));
    assert!(err(3, 1, 1, &[0, 1]).contains("only 2 classes"));
    // Four examples per class: 3 shots and 2 query shots need five.
    let e = err(2, 3, 2, &[0, 1]);
    assert!(
        e.contains("class \"a\" has 4 examples") && e.contains("5"),
        "{e}"
    );
    assert!(err(2, 1, 1, &[0, 1, 0]).contains("listed twice"));
    for e in [err(1, 1, 1, &[0, 1]), err(2, 3, 2, &[0, 1])] {
        assert!(!e.contains('\n'), "{e}");
    }
}

/// A change that makes settings invalid.
type Spoil = fn(&mut ReptileConfig);

#[test]
fn bad_settings_are_refused_before_any_work() {
    let ok = config(1, 1, 1.0, MetaLrSchedule::Linear);
    ok.validate().unwrap();
    let cases: [(&str, Spoil); 8] = [
        ("`meta_lr` must be in (0, 1]", |c| c.meta_lr = 0.0),
        ("`meta_lr` must be in (0, 1]", |c| c.meta_lr = -0.1),
        ("`meta_lr` must be in (0, 1]", |c| c.meta_lr = 1.5),
        ("`inner_lr` must be a positive number", |c| {
            c.inner_lr = f64::NAN
        }),
        ("`meta_batch` must be at least 1", |c| c.meta_batch = 0),
        ("`inner_steps` must be at least 1", |c| c.inner_steps = 0),
        ("`query_shots` must be at least 1", |c| c.query_shots = 0),
        ("`ways` must be at least 2", |c| c.ways = 1),
    ];
    for (want, spoil) in cases {
        let mut c = ok.clone();
        spoil(&mut c);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        // meta_train checks before it touches the model.
        let model = Quadratic::new(&[0.3, -0.2]);
        let sampler = EpisodeSampler::new(&labels(), &names(), &[0, 1, 2, 3], 2, 2, 1).unwrap();
        assert!(reptile::meta_train(&model, &Points, &sampler, &c, &mut |_| {}).is_err());
        assert_close(&model.w(), &[0.3, -0.2]);
    }
}

#[test]
fn few_shot_accuracy_is_a_mean_with_its_interval_and_leaves_the_weights() {
    let a = FewShotAccuracy::of(vec![1.0, 0.5]);
    assert_eq!((a.episodes, a.mean), (2, 0.75));
    // Sample sd √(2 · 0.25² / 1) = 0.35355; 1.96 · sd / √2 = 0.49.
    assert!((a.ci95 - 0.49).abs() < 1e-9, "{}", a.ci95);
    let model = Quadratic::new(&[0.3, -0.2]);
    let sampler = EpisodeSampler::new(&labels(), &names(), &[0, 1, 2, 3], 2, 2, 1).unwrap();
    let inner = InnerLoop {
        optimizer: OptimizerKind::Sgd,
        lr: 0.1,
        steps: 2,
    };
    let acc = reptile::few_shot_accuracy(&model, &Points, &sampler, &inner, 5, 3).unwrap();
    assert_eq!(acc.episodes, 5);
    assert!(acc.per_episode.iter().all(|a| (0.0..=1.0).contains(a)));
    assert_eq!(
        acc,
        reptile::few_shot_accuracy(&model, &Points, &sampler, &inner, 5, 3).unwrap()
    );
    assert_close(&model.w(), &[0.3, -0.2]);
    let head = model.store.get("head.b").unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(
        head,
        [0.5, -0.5],
        "the starting weights are restored, head included"
    );
}
