//! timm's batch and sample recipes: `Mixup` / CutMix (mixed images and soft targets for a
//! fixed λ against a computation written out here, the cutmix boxes and their λ correction,
//! the Beta draws) and `RandomErasing` (boxes against the area and aspect formulas, fills).

use finetune_core::Rng;
use finetune_data::image::mixup::{beta, box_for_lam, box_minmax, MixMode, Mixup};
use finetune_data::transforms::{EraseMode, RandomErasing, Sample, TensorImage, Transform};

const CHW: (usize, usize, usize) = (2, 6, 8);

fn images(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::seed_from_u64(seed);
    let len = CHW.0 * CHW.1 * CHW.2;
    (0..n)
        .map(|_| (0..len).map(|_| rng.normal() as f32).collect())
        .collect()
}

fn mixup(mode: MixMode, smoothing: f64) -> Mixup {
    Mixup {
        mixup_alpha: 0.8,
        cutmix_alpha: 1.0,
        cutmix_minmax: None,
        prob: 1.0,
        switch_prob: 0.5,
        mode,
        correct_lam: true,
        smoothing,
        num_classes: 4,
        off_epoch: None,
    }
}

/// The target row of a sample of class `a` mixed with one of class `b` by `lam`, smoothing `e`
/// over 4 classes: `e/4` everywhere, plus `(1 − e)·lam` at `a` and `(1 − e)·(1 − lam)` at `b`.
fn target_row(a: usize, b: usize, lam: f64, e: f64) -> Vec<f64> {
    let mut row = vec![e / 4.0; 4];
    row[a] += (1.0 - e) * lam;
    row[b] += (1.0 - e) * (1.0 - lam);
    row
}

fn assert_row(got: &[f32], want: &[f64], what: &str) {
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-6, "{what}: {got:?} vs {want:?}");
    }
    let sum: f64 = got.iter().map(|&g| g as f64).sum();
    assert!(
        (sum - 1.0).abs() < 1e-6,
        "{what}: a distribution sums to 1, got {sum}"
    );
}

#[test]
fn mixup_with_a_fixed_lambda_blends_each_sample_with_the_reversed_batch() {
    let labels = [0, 1, 2, 3, 1];
    let orig = images(5, 1);
    let mut x = orig.clone();
    let m = mixup(MixMode::Batch, 0.1);
    let t = m.mix_with(
        &mut x,
        CHW,
        &labels,
        &[Some((0.3, false)); 5],
        &mut Rng::seed_from_u64(0),
    );
    for i in 0..5 {
        let j = 4 - i;
        for (k, v) in x[i].iter().enumerate() {
            let want = 0.3 * orig[i][k] as f64 + 0.7 * orig[j][k] as f64;
            assert!((*v as f64 - want).abs() < 1e-5, "sample {i} value {k}");
        }
        let row = target_row(labels[i], labels[j], 0.3, 0.1);
        assert_row(&t[i * 4..(i + 1) * 4], &row, &format!("target {i}"));
    }
}

#[test]
fn cutmix_pastes_one_box_and_corrects_lambda_to_its_area() {
    let (h, w) = (CHW.1, CHW.2);
    let labels = [2, 0, 1, 3];
    let orig = images(4, 2);
    let m = mixup(MixMode::Batch, 0.0);
    let rng = Rng::seed_from_u64(9);
    let (bx, corrected) = m.cutmix_box(h, w, 0.55, &mut rng.clone());
    assert!(bx.area() > 0);
    let lam = 1.0 - bx.area() as f64 / (h * w) as f64;
    assert!((corrected - lam).abs() < 1e-12);
    let mut x = orig.clone();
    let t = m.mix_with(
        &mut x,
        CHW,
        &labels,
        &[Some((0.55, true)); 4],
        &mut rng.clone(),
    );
    for i in 0..4 {
        let j = 3 - i;
        for c in 0..CHW.0 {
            for y in 0..h {
                for xx in 0..w {
                    let k = (c * h + y) * w + xx;
                    let inside = (bx.y0..bx.y1).contains(&y) && (bx.x0..bx.x1).contains(&xx);
                    let from = if inside { &orig[j] } else { &orig[i] };
                    assert_eq!(x[i][k], from[k], "sample {i} at c{c} y{y} x{xx}");
                }
            }
        }
        let row = target_row(labels[i], labels[j], lam, 0.0);
        assert_row(&t[i * 4..(i + 1) * 4], &row, &format!("target {i}"));
    }
}

#[test]
fn cutmix_boxes_follow_timms_formulas() {
    let (h, w) = (24usize, 32usize);
    let mut rng = Rng::seed_from_u64(5);
    for draw in 0..500 {
        let lam = rng.next_f64();
        let mut probe = rng.clone();
        let (cy, cx) = (probe.below(h as u64) as i64, probe.below(w as u64) as i64);
        let b = box_for_lam(h, w, lam, &mut rng);
        let r = (1.0 - lam).sqrt();
        let (ch, cw) = ((h as f64 * r).floor() as i64, (w as f64 * r).floor() as i64);
        let clip = |v: i64, hi: usize| v.clamp(0, hi as i64) as usize;
        assert_eq!(
            (b.y0, b.y1, b.x0, b.x1),
            (
                clip(cy - ch / 2, h),
                clip(cy + (ch + 1) / 2, h),
                clip(cx - cw / 2, w),
                clip(cx + (cw + 1) / 2, w)
            ),
            "draw {draw}, λ {lam}"
        );
        let (lo, hi) = (0.2, 0.8);
        let mm = box_minmax(h, w, lo, hi, &mut rng);
        let (bh, bw) = (mm.y1 - mm.y0, mm.x1 - mm.x0);
        assert!((4..19).contains(&bh) && (6..25).contains(&bw), "{mm:?}");
        assert!(mm.y1 <= h && mm.x1 <= w, "{mm:?} inside");
    }
    // With --cutmix-minmax λ is the uncovered share, whatever λ was drawn.
    let m = Mixup {
        cutmix_minmax: Some((0.2, 0.8)),
        correct_lam: false,
        ..mixup(MixMode::Batch, 0.0)
    };
    let (b, lam) = m.cutmix_box(h, w, 0.9, &mut rng);
    assert!((lam - (1.0 - b.area() as f64 / (h * w) as f64)).abs() < 1e-12);
}

#[test]
fn pair_and_elem_modes_mix_per_pair_and_per_sample() {
    let labels = [0, 1, 2, 3, 0];
    let orig = images(5, 3);
    let m = mixup(MixMode::Pair, 0.0);
    let mut x = orig.clone();
    let params = [
        Some((0.25, false)),
        Some((0.6, false)),
        None,
        Some((0.6, false)),
        Some((0.25, false)),
    ];
    let t = m.mix_with(&mut x, CHW, &labels, &params, &mut Rng::seed_from_u64(1));
    for (i, lam) in [(0, 0.25), (1, 0.6), (3, 0.6), (4, 0.25)] {
        let j = 4 - i;
        let want = 0.0f64.max(lam) * orig[i][7] as f64 + (1.0 - lam) * orig[j][7] as f64;
        assert!((x[i][7] as f64 - want).abs() < 1e-5, "pair sample {i}");
        assert_row(
            &t[i * 4..i * 4 + 4],
            &target_row(labels[i], labels[j], lam, 0.0),
            "pair",
        );
    }
    assert_eq!(x[2], orig[2], "the middle sample of an odd batch stays");
    assert_row(&t[8..12], &target_row(2, 2, 1.0, 0.0), "middle target");

    let m = mixup(MixMode::Elem, 0.0);
    let mut x = orig.clone();
    let lams = [0.1, 0.5, 0.9, 1.0, 0.7];
    let params: Vec<_> = lams.iter().map(|&l| Some((l, false))).collect();
    let t = m.mix_with(&mut x, CHW, &labels, &params, &mut Rng::seed_from_u64(1));
    for (i, lam) in lams.into_iter().enumerate() {
        let j = 4 - i;
        let want = lam * orig[i][3] as f64 + (1.0 - lam) * orig[j][3] as f64;
        assert!((x[i][3] as f64 - want).abs() < 1e-5, "elem sample {i}");
        assert_row(
            &t[i * 4..i * 4 + 4],
            &target_row(labels[i], labels[j], lam, 0.0),
            "elem",
        );
    }
}

#[test]
fn drawn_mixing_is_deterministic_and_respects_prob() {
    let labels = [0, 1, 2, 3];
    let run = |m: &Mixup, seed| {
        let mut x = images(4, 4);
        let t = m.apply(&mut x, CHW, &labels, &mut Rng::seed_from_u64(seed));
        (x, t)
    };
    for mode in [MixMode::Batch, MixMode::Pair, MixMode::Elem] {
        let m = mixup(mode, 0.1);
        assert_eq!(run(&m, 7), run(&m, 7), "{mode}: same generator, same batch");
        assert_ne!(run(&m, 7), run(&m, 8), "{mode}: another generator");
        let off = Mixup {
            prob: 0.0,
            ..m.clone()
        };
        let (x, t) = run(&off, 7);
        assert_eq!(x, images(4, 4), "{mode}: prob 0 mixes nothing");
        for i in 0..4 {
            assert_row(
                &t[i * 4..i * 4 + 4],
                &target_row(labels[i], labels[3 - i], 1.0, 0.1),
                "unmixed",
            );
        }
    }
    // Only cutmix (α_mixup = 0): every drawn batch pastes a box, no blending.
    let cut = Mixup {
        mixup_alpha: 0.0,
        ..mixup(MixMode::Batch, 0.0)
    };
    for seed in 0..20 {
        assert!(cut.draw(&mut Rng::seed_from_u64(seed)).1);
    }
    let mix = Mixup {
        cutmix_alpha: 0.0,
        ..mixup(MixMode::Batch, 0.0)
    };
    for seed in 0..20 {
        assert!(!mix.draw(&mut Rng::seed_from_u64(seed)).1);
    }
}

#[test]
fn mixing_stops_at_the_off_epoch_and_leaves_smoothed_one_hot_targets() {
    let labels = [2, 0, 3, 1];
    let m = Mixup {
        off_epoch: Some(3),
        ..mixup(MixMode::Elem, 0.1)
    };
    assert!(m.enabled(0) && m.enabled(2) && !m.enabled(3) && !m.enabled(9));
    // Before the off epoch: exactly `apply` with the same generator.
    let (mut before, mut reference) = (images(4, 5), images(4, 5));
    let t = m.apply_in_epoch(&mut before, CHW, &labels, 2, &mut Rng::seed_from_u64(1));
    let want = m.apply(&mut reference, CHW, &labels, &mut Rng::seed_from_u64(1));
    assert_eq!((before, t), (reference, want), "epoch 2 still mixes");
    // From it on: images untouched, targets `ε/C` off and `1 − ε + ε/C` on.
    let mut after = images(4, 5);
    let t = m.apply_in_epoch(&mut after, CHW, &labels, 3, &mut Rng::seed_from_u64(1));
    assert_eq!(after, images(4, 5), "epoch 3 mixes nothing");
    for (i, &l) in labels.iter().enumerate() {
        assert_row(&t[i * 4..i * 4 + 4], &target_row(l, l, 1.0, 0.1), "off");
    }
}

#[test]
fn beta_draws_have_the_beta_distributions_moments() {
    let mut rng = Rng::seed_from_u64(11);
    let n = 40_000;
    for alpha in [0.2, 0.8, 1.0, 3.0] {
        let xs: Vec<f64> = (0..n).map(|_| beta(alpha, &mut rng)).collect();
        assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let want_var = 1.0 / (4.0 * (2.0 * alpha + 1.0));
        assert!((mean - 0.5).abs() < 0.01, "α {alpha}: mean {mean}");
        assert!(
            (var - want_var).abs() < 0.01 * want_var.max(0.1),
            "α {alpha}: var {var} vs {want_var}"
        );
    }
}

fn tensor(c: usize, h: usize, w: usize, value: f32) -> TensorImage {
    TensorImage {
        channels: c,
        height: h,
        width: w,
        data: vec![value; c * h * w],
    }
}

/// The erased pixels (value ≠ 7) of one image as (channel, y, x).
fn erased(t: &TensorImage) -> Vec<(usize, usize, usize)> {
    let (h, w) = (t.height, t.width);
    (0..t.data.len())
        .filter(|&k| t.data[k] != 7.0)
        .map(|k| (k / (h * w), (k / w) % h, k % w))
        .collect()
}

#[test]
fn erasing_boxes_follow_the_area_and_aspect_formulas() {
    let (h, w) = (40usize, 50usize);
    let e = RandomErasing::new(1.0, EraseMode::Const, 1).unwrap();
    let mut rng = Rng::seed_from_u64(3);
    for _ in 0..300 {
        // The geometry written out: the first attempt that fits (here almost always the first).
        let mut probe = rng.clone();
        probe.next_f64();
        let area = probe.uniform(0.02, 1.0 / 3.0) * (h * w) as f64;
        let aspect = probe.uniform(0.3f64.ln(), (1.0 / 0.3f64).ln()).exp();
        let (bh, bw) = ((area * aspect).sqrt(), (area / aspect).sqrt());
        let img = e
            .apply(Sample::Tensor(tensor(3, h, w, 7.0)), &mut rng)
            .unwrap();
        let Sample::Tensor(img) = img else { panic!() };
        let px = erased(&img);
        let ys: Vec<usize> = px.iter().map(|p| p.1).collect();
        let xs: Vec<usize> = px.iter().map(|p| p.2).collect();
        let (rows, cols) = (
            ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1,
            xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1,
        );
        assert_eq!(px.len(), 3 * rows * cols, "a full box in every channel");
        if bh.round() < h as f64 && bw.round() < w as f64 {
            assert!((rows as f64 - bh).abs() <= 0.5 && (cols as f64 - bw).abs() <= 0.5);
        }
        let share = (rows * cols) as f64 / (h * w) as f64;
        assert!((0.015..0.36).contains(&share), "area share {share}");
    }
}

#[test]
fn erasing_fills_probability_and_count() {
    let (c, h, w) = (3, 32, 32);
    let run = |e: &RandomErasing, seed| {
        let out = e.apply(
            Sample::Tensor(tensor(c, h, w, 7.0)),
            &mut Rng::seed_from_u64(seed),
        );
        match out.unwrap() {
            Sample::Tensor(t) => t,
            _ => panic!("a tensor"),
        }
    };
    // pixel: standard normal values.
    let pixel = RandomErasing::new(1.0, EraseMode::Pixel, 1).unwrap();
    let vals: Vec<f64> = (0..200)
        .flat_map(|s| {
            let t = run(&pixel, s);
            t.data
                .into_iter()
                .filter(|&v| v != 7.0)
                .map(|v| v as f64)
                .collect::<Vec<_>>()
        })
        .collect();
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
    assert!(
        mean.abs() < 0.02 && (sd - 1.0).abs() < 0.02,
        "N(0,1): mean {mean}, sd {sd}"
    );
    // rand: one value per channel; const: zeros.
    let t = run(&RandomErasing::new(1.0, EraseMode::Rand, 1).unwrap(), 4);
    for ch in 0..c {
        let plane: Vec<f32> = t.data[ch * h * w..(ch + 1) * h * w]
            .iter()
            .copied()
            .filter(|&v| v != 7.0)
            .collect();
        assert!(
            !plane.is_empty() && plane.iter().all(|&v| v == plane[0]),
            "channel {ch}"
        );
    }
    let t = run(&RandomErasing::new(1.0, EraseMode::Const, 1).unwrap(), 4);
    assert!(t.data.iter().all(|&v| v == 7.0 || v == 0.0) && t.data.contains(&0.0));
    // Probability 0.25: about a quarter of the images are erased.
    let quarter = RandomErasing::new(0.25, EraseMode::Const, 1).unwrap();
    let hit = (0..4000)
        .filter(|&s| run(&quarter, s).data.contains(&0.0))
        .count();
    assert!((900..1100).contains(&hit), "{hit} of 4000 erased");
    // --recount 3: the same seed is reproduced, and some images get more than one box.
    let three = RandomErasing::new(1.0, EraseMode::Const, 3).unwrap();
    assert_eq!(run(&three, 9), run(&three, 9));
    let boxes = |e: &RandomErasing, s| {
        let mut n = 0;
        e.boxes(h, w, &mut Rng::seed_from_u64(s), |_, _| n += 1);
        n
    };
    let counts: std::collections::BTreeSet<usize> = (0..200).map(|s| boxes(&three, s)).collect();
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    // Bad settings: one line naming the flag.
    let err = RandomErasing::new(1.5, EraseMode::Pixel, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--reprob must be in [0, 1], got 1.5"), "{err}");
    let err = RandomErasing::new(0.5, EraseMode::Pixel, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--recount must be at least 1"), "{err}");
}
