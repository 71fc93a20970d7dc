//! RandAugment (`--aa`): timm's policy strings, and the Pillow operations it draws from against
//! their formulas written out here (level → argument as timm maps it).

use finetune_core::Rng;
use finetune_data::image::Image;
use finetune_data::transforms::pil_ops::{self, Enhance};
use finetune_data::transforms::rand_augment::{RandAugment, RandOp, OPS};
use finetune_data::transforms::{Sample, Transform};

fn image(seed: u64, channels: u8) -> Image {
    let mut rng = Rng::seed_from_u64(seed);
    let (w, h) = (7u32, 5u32);
    // Values in 40..200, so autocontrast and equalize have work to do.
    let data = (0..w * h * channels as u32)
        .map(|_| 40 + rng.below(160) as u8)
        .collect();
    Image::new(w, h, channels, data)
}

#[test]
fn policies_parse_as_timm_reads_them() {
    let ra: RandAugment = "rand-m9-mstd0.5-inc1".parse().unwrap();
    assert_eq!(
        (
            ra.magnitude,
            ra.num_layers,
            ra.prob,
            ra.magnitude_std,
            ra.magnitude_max,
            ra.increasing
        ),
        (9.0, 2, 0.5, 0.5, 10.0, true)
    );
    let ra: RandAugment = "rand-n3-m7-p0.8-mstd101-mmax12".parse().unwrap();
    assert_eq!(
        (ra.num_layers, ra.magnitude, ra.prob, ra.magnitude_max),
        (3, 7.0, 0.8, 12.0)
    );
    assert!(ra.magnitude_std.is_infinite() && !ra.increasing);
    let ra: RandAugment = "rand".parse().unwrap();
    assert_eq!((ra.magnitude, ra.num_layers, ra.prob), (10.0, 2, 0.5));
    assert_eq!(ra.fill, [128, 128, 128], "timm's fill without a mean");
    let ra = ra.with_mean_fill(&[0.485, 0.456, 0.406]);
    assert_eq!(ra.fill, [124, 116, 104], "round(255 · ImageNet mean)");
    for (bad, needle) in [
        ("augmix-m5", "only RandAugment"),
        ("rand-q3", "unknown section `q3`"),
        ("rand-m", "`m` needs a number"),
        ("rand-p2", "not a probability"),
    ] {
        let err = bad.parse::<RandAugment>().unwrap_err().to_string();
        assert!(err.contains("--aa") && err.contains(needle), "{bad}: {err}");
    }
}

#[test]
fn point_operations_follow_their_formulas() {
    let orig = image(1, 3);
    let each = |f: &dyn Fn(&mut Image), want: &dyn Fn(u8) -> u8| {
        let mut img = orig.clone();
        f(&mut img);
        for (g, v) in img.data.iter().zip(&orig.data) {
            assert_eq!(*g, want(*v), "value {v}");
        }
    };
    each(&|i| pil_ops::invert(i), &|v| 255 - v);
    each(&|i| pil_ops::posterize(i, 3), &|v| v - v % 32);
    each(&|i| pil_ops::posterize(i, 8), &|v| v);
    each(&|i| pil_ops::solarize(i, 100), &|v| {
        if v >= 100 {
            255 - v
        } else {
            v
        }
    });
    each(&|i| pil_ops::solarize_add(i, 99), &|v| {
        if v < 128 {
            (v as u32 + 99).min(255) as u8
        } else {
            v
        }
    });
    // Autocontrast: each channel's [min, max] stretched onto [0, 255].
    let mut img = orig.clone();
    pil_ops::autocontrast(&mut img);
    for ch in 0..3 {
        let vals: Vec<u8> = orig.data.iter().skip(ch).step_by(3).copied().collect();
        let (lo, hi) = (
            *vals.iter().min().unwrap() as f64,
            *vals.iter().max().unwrap() as f64,
        );
        let got: Vec<u8> = img.data.iter().skip(ch).step_by(3).copied().collect();
        for (g, v) in got.iter().zip(&vals) {
            let want = ((*v as f64 - lo) * 255.0 / (hi - lo)).floor();
            assert!(
                (*g as f64 - want).abs() <= 1.0,
                "channel {ch}: {v} → {g}, want {want}"
            );
        }
        assert!(got.contains(&0) && got.contains(&255));
    }
}

#[test]
fn equalize_spreads_the_histogram_as_pillow_does() {
    let orig = image(2, 1);
    let mut img = orig.clone();
    pil_ops::equalize(&mut img);
    // Pillow's LUT written out: step = (N − count of the top value) // 255, lut[i] = (step/2 +
    // count below i) // step.
    let mut h = [0u64; 256];
    orig.data.iter().for_each(|&v| h[v as usize] += 1);
    let top = h.iter().rposition(|&n| n > 0).unwrap();
    let step = (orig.data.len() as u64 - h[top]) / 255;
    assert!(step == 0, "35 pixels: Pillow leaves the image as it is");
    assert_eq!(img.data, orig.data);
    // A larger image: the LUT applies.
    let mut rng = Rng::seed_from_u64(3);
    let big = Image::new(
        40,
        30,
        1,
        (0..1200).map(|_| 60 + rng.below(50) as u8).collect(),
    );
    let mut eq = big.clone();
    pil_ops::equalize(&mut eq);
    let mut h = [0u64; 256];
    big.data.iter().for_each(|&v| h[v as usize] += 1);
    let top = h.iter().rposition(|&n| n > 0).unwrap();
    let step = (1200 - h[top]) / 255;
    let below = |i: usize| h[..i].iter().sum::<u64>();
    for (g, v) in eq.data.iter().zip(&big.data) {
        assert_eq!(*g as u64, ((step / 2 + below(*v as usize)) / step).min(255));
    }
}

#[test]
fn enhancements_blend_with_pillows_degenerate_images() {
    let orig = image(4, 3);
    let l =
        |p: &[u8]| (p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 32768) >> 16;
    let blend = |d: f64, v: u8, f: f64| (d + f * (v as f64 - d)).clamp(0.0, 255.0).floor() as u8;
    let mean = orig.data.chunks(3).map(|p| l(p) as f64).sum::<f64>() / 35.0;
    for f in [0.1, 0.55, 1.0, 1.9] {
        for (kind, degenerate) in [
            (
                Enhance::Brightness,
                Box::new(|_: usize| 0.0) as Box<dyn Fn(usize) -> f64>,
            ),
            (Enhance::Contrast, Box::new(|_| (mean + 0.5).floor())),
            (
                Enhance::Color,
                Box::new(|k| l(&orig.data[k / 3 * 3..k / 3 * 3 + 3]) as f64),
            ),
        ] {
            let mut img = orig.clone();
            pil_ops::enhance(&mut img, kind, f);
            for (k, (g, v)) in img.data.iter().zip(&orig.data).enumerate() {
                let want = blend(degenerate(k), *v, f);
                assert!(
                    g.abs_diff(want) <= 1,
                    "{kind:?} {f}: {v} → {g}, want {want}"
                );
            }
        }
    }
}

#[test]
fn levels_map_to_timms_arguments_and_the_transform_is_seeded() {
    let inc: RandAugment = "rand-m9-inc1".parse().unwrap();
    let plain: RandAugment = "rand-m9".parse().unwrap();
    let orig = image(5, 3);
    let run = |ra: &RandAugment, op, m| {
        let mut img = orig.clone();
        ra.apply_op(&mut img, op, m, &mut Rng::seed_from_u64(0));
        img
    };
    let with = |f: &dyn Fn(&mut Image)| {
        let mut img = orig.clone();
        f(&mut img);
        img
    };
    // m 9: posterize ⌊3.6⌋ = 3 bits (increasing: 4 − 3 = 1), solarize ⌊230.4⌋ = 230 (256 − 230
    // = 26), solarize-add ⌊99⌋ = 99.
    assert_eq!(
        run(&plain, RandOp::Posterize, 9.0),
        with(&|i| pil_ops::posterize(i, 3))
    );
    assert_eq!(
        run(&inc, RandOp::Posterize, 9.0),
        with(&|i| pil_ops::posterize(i, 1))
    );
    assert_eq!(
        run(&plain, RandOp::Solarize, 9.0),
        with(&|i| pil_ops::solarize(i, 230))
    );
    assert_eq!(
        run(&inc, RandOp::Solarize, 9.0),
        with(&|i| pil_ops::solarize(i, 26))
    );
    assert_eq!(
        run(&inc, RandOp::SolarizeAdd, 9.0),
        with(&|i| pil_ops::solarize_add(i, 99))
    );
    // Enhancements: 1.8·0.9 + 0.1 = 1.72; increasing 1 ± 0.81.
    assert_eq!(
        run(&plain, RandOp::Color, 9.0),
        with(&|i| pil_ops::enhance(i, Enhance::Color, 1.72))
    );
    let b = run(&inc, RandOp::Brightness, 9.0);
    let up = with(&|i| pil_ops::enhance(i, Enhance::Brightness, 1.81));
    let down = with(&|i| pil_ops::enhance(i, Enhance::Brightness, 1.0 - 0.81));
    assert!(b == up || b == down);
    // The transform: the same generator gives the same image; over many seeds every
    // operation's effect shows up and the image changes.
    let ra: RandAugment = "rand-m9-mstd0.5-inc1".parse().unwrap();
    let apply = |seed| match ra
        .apply(Sample::Pixels(orig.clone()), &mut Rng::seed_from_u64(seed))
        .unwrap()
    {
        Sample::Pixels(i) => i,
        _ => panic!("pixels"),
    };
    assert_eq!(apply(7), apply(7));
    let changed = (0..50).filter(|&s| apply(s) != orig).count();
    assert!(
        (10..50).contains(&changed),
        "{changed} of 50 changed (p 0.5, two layers)"
    );
    assert_eq!(OPS.len(), 15);
    let tensor = ra.apply(
        Sample::Tensor(finetune_data::transforms::TensorImage {
            channels: 1,
            height: 1,
            width: 1,
            data: vec![0.0],
        }),
        &mut Rng::seed_from_u64(1),
    );
    assert!(tensor.unwrap_err().to_string().contains("before ToTensor"));
}

#[test]
fn sharpness_blends_with_pillows_smoothed_image() {
    let orig = image(6, 3);
    let (w, h) = (7usize, 5usize);
    let px = |x: usize, y: usize, c: usize| orig.data[(y * w + x) * 3 + c] as f64;
    for f in [0.2, 1.6] {
        let mut img = orig.clone();
        pil_ops::enhance(&mut img, Enhance::Sharpness, f);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let border = x == 0 || y == 0 || x == w - 1 || y == h - 1;
                    let smooth = if border {
                        px(x, y, c)
                    } else {
                        let mut s = 4.0 * px(x, y, c);
                        for (dx, dy) in (0..3).flat_map(|a| (0..3).map(move |b| (a, b))) {
                            s += px(x + dx - 1, y + dy - 1, c);
                        }
                        (s / 13.0 + 0.5).floor()
                    };
                    let want = (smooth + f * (px(x, y, c) - smooth))
                        .clamp(0.0, 255.0)
                        .floor();
                    let got = img.data[(y * w + x) * 3 + c] as f64;
                    assert!(
                        (got - want).abs() <= 1.0,
                        "f {f} at ({x}, {y}, {c}): {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn geometric_operations_move_pixels_and_fill_with_the_mean() {
    let ra: RandAugment = "rand-m10"
        .parse::<RandAugment>()
        .unwrap()
        .with_mean_fill(&[0.5, 0.25, 1.0]);
    let fill = [128u8, 64, 255];
    let orig = image(7, 3);
    let (w, h) = (7usize, 5usize);
    let at =
        |img: &Image, x: usize, y: usize| img.data[(y * w + x) * 3..(y * w + x) * 3 + 3].to_vec();
    // m 10: a shift of ±0.45 of the side; both signs come up over a few seeds.
    for seed in 0..8 {
        let mut img = orig.clone();
        ra.apply_op(
            &mut img,
            RandOp::TranslateXRel,
            10.0,
            &mut Rng::seed_from_u64(seed),
        );
        let shift = 0.45 * w as f64; // 3.15 pixels
        let right = at(&img, 0, 2) == fill;
        for y in 0..h {
            for x in 0..w {
                let src = if right {
                    x as f64 - shift
                } else {
                    x as f64 + shift
                };
                if !(0.0..w as f64).contains(&(src + 0.5)) {
                    assert_eq!(at(&img, x, y), fill, "({x}, {y}) filled");
                }
            }
        }
        let mut img = orig.clone();
        ra.apply_op(
            &mut img,
            RandOp::TranslateYRel,
            10.0,
            &mut Rng::seed_from_u64(seed),
        );
        assert!(
            (0..w).all(|x| at(&img, x, 0) == fill) || (0..w).all(|x| at(&img, x, h - 1) == fill)
        );
    }
    // Shear 0 and rotation 0 (magnitude 0) leave the image as it is; at magnitude 10 they
    // change it, and rotation is `rotate` by ±30°.
    for op in [RandOp::ShearX, RandOp::ShearY, RandOp::Rotate] {
        let mut img = orig.clone();
        ra.apply_op(&mut img, op, 0.0, &mut Rng::seed_from_u64(1));
        assert_eq!(img, orig, "{op:?} at 0");
        let mut img = orig.clone();
        ra.apply_op(&mut img, op, 10.0, &mut Rng::seed_from_u64(1));
        assert_ne!(img, orig, "{op:?} at 10");
    }
    let mut img = orig.clone();
    ra.apply_op(&mut img, RandOp::Rotate, 10.0, &mut Rng::seed_from_u64(2));
    let bilinear = finetune_data::transforms::Interpolation::Bilinear;
    let turned = |deg| finetune_data::transforms::rotation::rotate(&orig, deg, bilinear, &fill);
    assert!(img == turned(30.0) || img == turned(-30.0));
}
