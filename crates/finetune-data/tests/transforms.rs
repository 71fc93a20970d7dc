//! Each transform against hand-computed expectations (torchvision / Pillow semantics).

use finetune_core::Rng;
use finetune_data::image::Image;
use finetune_data::transforms::random_resized_crop::CropBox;
use finetune_data::transforms::resize::resample;
use finetune_data::transforms::rotation::rotate;
use finetune_data::transforms::*;

fn gray(w: u32, h: u32, data: &[u8]) -> Image {
    Image::new(w, h, 1, data.to_vec())
}

fn pixels(s: Sample) -> Image {
    match s {
        Sample::Pixels(i) => i,
        Sample::Tensor(_) => panic!("expected pixels"),
    }
}

fn rng() -> Rng {
    Rng::seed_from_u64(0)
}

#[test]
fn bilinear_downscale_is_antialiased_like_pillow() {
    // 4 -> 2: the triangle filter is widened 2x; output 0 has centre 1.0 and reads inputs 0..3
    // with weights 0.75, 0.75, 0.25 (/1.75); output 1 reads inputs 1..4 with 0.25, 0.75, 0.75.
    let out = resample(
        &gray(4, 1, &[0, 100, 200, 40]),
        2,
        1,
        Interpolation::Bilinear,
    );
    // (0*3 + 100*3 + 200) / 7 = 71.43; (100 + 200*3 + 40*3) / 7 = 117.14
    assert_eq!(out.data, vec![71, 117]);
}

#[test]
fn bilinear_and_bicubic_upscale_of_a_step() {
    // 2 -> 4: centres 0.25, 0.75, 1.25, 1.75 in input coordinates.
    let out = resample(&gray(2, 1, &[0, 100]), 4, 1, Interpolation::Bilinear);
    assert_eq!(out.data, vec![0, 25, 75, 100]);
    // Bicubic (a = -0.5) at centre 0.75: weights k(0.25) = 0.8671875 and k(0.75) = 0.2265625,
    // normalised: 100 * 0.2265625 / 1.09375 = 20.7 -> 21. At the edges the negative lobe
    // overshoots, as in Pillow: centre 1.75 reads input 0 with k(1.25) = -0.0703125 and input 1
    // with 0.8671875: 100 * 0.8671875 / 0.796875 = 108.8 -> 109; centre 0.25 undershoots to 0.
    let out = resample(&gray(2, 1, &[0, 100]), 4, 1, Interpolation::Bicubic);
    assert_eq!(out.data, vec![0, 21, 79, 109]);
    // Vertical direction, RGB: the same weights per channel.
    let col = Image::new(1, 2, 3, vec![0, 100, 200, 100, 0, 200]);
    let out = resample(&col, 1, 4, Interpolation::Bilinear);
    assert_eq!(
        out.data,
        vec![0, 100, 200, 25, 75, 200, 75, 25, 200, 100, 0, 200]
    );
}

#[test]
fn nearest_samples_pixel_centres() {
    // 4 -> 2: floor((x + 0.5) * 2) = 1, 3.
    let out = resample(&gray(4, 1, &[10, 20, 30, 40]), 2, 1, Interpolation::Nearest);
    assert_eq!(out.data, vec![20, 40]);
    // 2 -> 3: floor((x + 0.5) * 2/3) = 0, 1, 1.
    let out = resample(&gray(2, 1, &[10, 20]), 3, 1, Interpolation::Nearest);
    assert_eq!(out.data, vec![10, 20, 20]);
}

#[test]
fn constant_images_stay_constant_through_resampling() {
    let img = Image::new(37, 23, 3, [9u8, 128, 250].repeat(37 * 23));
    for interp in [
        Interpolation::Nearest,
        Interpolation::Bilinear,
        Interpolation::Bicubic,
    ] {
        let out = resample(&img, 11, 50, interp);
        assert_eq!((out.width, out.height), (11, 50));
        assert!(out.data.chunks(3).all(|p| p == [9, 128, 250]), "{interp:?}");
    }
}

#[test]
fn resize_shorter_side_keeps_aspect_with_truncation() {
    let r = Resize::new(ResizeTo::Shorter(256), Interpolation::Bilinear);
    // 500x375: the height is shorter; width int(256 * 500 / 375) = int(341.33) = 341.
    assert_eq!(r.output_size(500, 375), (341, 256));
    assert_eq!(r.output_size(375, 500), (256, 341));
    assert_eq!(r.output_size(300, 300), (256, 256));
    let exact = Resize::new(
        ResizeTo::Exact {
            height: 10,
            width: 20,
        },
        Interpolation::Nearest,
    );
    assert_eq!(exact.output_size(500, 375), (20, 10));
    let out = pixels(
        r.apply(Sample::Pixels(gray(40, 30, &[7; 1200])), &mut rng())
            .unwrap(),
    );
    assert_eq!((out.width, out.height), (341, 256));
}

#[test]
fn center_crop_uses_python_rounding_and_pads_small_images() {
    let img = gray(5, 4, &(0..20).collect::<Vec<u8>>());
    // left = round(1.5) = 2, top = round(1.0) = 1.
    let out = pixels(
        CenterCrop::new(2, 2)
            .apply(Sample::Pixels(img), &mut rng())
            .unwrap(),
    );
    assert_eq!(out.data, vec![7, 8, 12, 13]);
    // round(0.5) = 0 (half to even), not 1.
    assert_eq!(CenterCrop::new(3, 3).offsets(4, 4), (0, 0));
    assert_eq!(CenterCrop::new(3, 3).offsets(6, 6), (2, 2)); // round(1.5) = 2
                                                             // Smaller than the crop: zero padding, (4-2)/2 = 1 on the left and top.
    let out = pixels(
        CenterCrop::new(4, 4)
            .apply(Sample::Pixels(gray(2, 2, &[1, 2, 3, 4])), &mut rng())
            .unwrap(),
    );
    assert_eq!(
        out.data,
        vec![0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0]
    );
}

#[test]
fn random_resized_crop_box_for_a_seed() {
    // Recompute torchvision's get_params from the documented draws of the same stream.
    let t = RandomResizedCrop::new(224, 224, Interpolation::Bilinear);
    let (w, h) = (500u32, 375u32);
    for seed in 0..50 {
        let got = t.params(w, h, &mut Rng::seed_from_u64(seed));
        let mut r = Rng::seed_from_u64(seed);
        let mut expected = None;
        for _ in 0..10 {
            let frac = 0.08 + (1.0 - 0.08) * r.next_f64();
            let lr = (0.75f64).ln() + ((4.0f64 / 3.0).ln() - (0.75f64).ln()) * r.next_f64();
            let target = 500.0 * 375.0 * frac;
            let (cw, ch) = ((target * lr.exp()).sqrt(), (target / lr.exp()).sqrt());
            let py_round = |x: f64| {
                let f = x.floor();
                if x - f == 0.5 {
                    if f % 2.0 == 0.0 {
                        f
                    } else {
                        f + 1.0
                    }
                } else {
                    x.round()
                }
            };
            let (cw, ch) = (py_round(cw) as u32, py_round(ch) as u32);
            if cw >= 1 && cw <= w && ch >= 1 && ch <= h {
                let top = r.below((h - ch + 1) as u64) as u32;
                let left = r.below((w - cw + 1) as u64) as u32;
                expected = Some(CropBox {
                    left,
                    top,
                    width: cw,
                    height: ch,
                });
                break;
            }
        }
        assert_eq!(Some(got), expected, "seed {seed}");
        assert!(got.left + got.width <= w && got.top + got.height <= h);
    }
}

#[test]
fn random_resized_crop_falls_back_to_a_centre_crop_after_ten_misses() {
    // Scale > 1 never fits: the fallback clamps the aspect ratio to [3/4, 4/3].
    let t = RandomResizedCrop::new(8, 8, Interpolation::Bilinear)
        .with_scale(1.5, 2.0)
        .unwrap();
    // 100x50 (ratio 2 > 4/3): height 50, width round(50 * 4/3) = 67, left (100-67)/2 = 16.
    assert_eq!(
        t.params(100, 50, &mut rng()),
        CropBox {
            left: 16,
            top: 0,
            width: 67,
            height: 50
        }
    );
    // 50x100 (ratio 0.5 < 3/4): width 50, height round(50 / 0.75) = 67, top 16.
    assert_eq!(
        t.params(50, 100, &mut rng()),
        CropBox {
            left: 0,
            top: 16,
            width: 50,
            height: 67
        }
    );
    assert_eq!(
        t.params(60, 50, &mut rng()),
        CropBox {
            left: 0,
            top: 0,
            width: 60,
            height: 50
        }
    );
    // scale (1, 1) and ratio (1, 1) on a square: the whole image.
    let full = RandomResizedCrop::new(8, 8, Interpolation::Bilinear)
        .with_scale(1.0, 1.0)
        .unwrap()
        .with_ratio(1.0, 1.0)
        .unwrap();
    assert_eq!(
        full.params(10, 10, &mut rng()),
        CropBox {
            left: 0,
            top: 0,
            width: 10,
            height: 10
        }
    );
}

#[test]
fn random_resized_crop_boxes_cover_the_scale_and_ratio_ranges() {
    let t = RandomResizedCrop::new(224, 224, Interpolation::Bilinear);
    let mut r = Rng::seed_from_u64(11);
    let (mut small, mut large) = (0, 0);
    for _ in 0..2000 {
        let b = t.params(400, 400, &mut r);
        let frac = (b.width * b.height) as f64 / 160_000.0;
        let ratio = b.width as f64 / b.height as f64;
        assert!((0.075..=1.0).contains(&frac), "{b:?}");
        assert!((0.74..=1.345).contains(&ratio), "{b:?}");
        small += (frac < 0.2) as usize;
        large += (frac > 0.8) as usize;
    }
    assert!(small > 100 && large > 100, "{small} {large}");
    // The output has the requested size.
    let img = Image::new(400, 300, 3, vec![5; 400 * 300 * 3]);
    let out = pixels(t.apply(Sample::Pixels(img), &mut r).unwrap());
    assert_eq!((out.width, out.height, out.channels), (224, 224, 3));
}

#[test]
fn horizontal_flip_mirrors_pixels_not_channels() {
    let img = Image::new(3, 2, 3, (0..18).collect());
    let out = pixels(
        RandomHorizontalFlip::new(1.0)
            .apply(Sample::Pixels(img.clone()), &mut rng())
            .unwrap(),
    );
    assert_eq!(
        out.data,
        vec![6, 7, 8, 3, 4, 5, 0, 1, 2, 15, 16, 17, 12, 13, 14, 9, 10, 11]
    );
    let out = pixels(
        RandomHorizontalFlip::new(0.0)
            .apply(Sample::Pixels(img.clone()), &mut rng())
            .unwrap(),
    );
    assert_eq!(out, img);
    let mut r = Rng::seed_from_u64(5);
    let flips = (0..1000)
        .filter(|_| {
            pixels(
                RandomHorizontalFlip::new(0.5)
                    .apply(Sample::Pixels(img.clone()), &mut r)
                    .unwrap(),
            ) != img
        })
        .count();
    assert!((430..570).contains(&flips), "{flips}");
}

#[test]
fn rotation_by_right_angles_is_exact_and_counter_clockwise() {
    let img = gray(3, 3, &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
    // Counter-clockwise by 90: the top-right pixel (2) moves to the top-left.
    let out = rotate(&img, 90.0, Interpolation::Nearest, &[0]);
    assert_eq!(out.data, vec![2, 5, 8, 1, 4, 7, 0, 3, 6]);
    let out = rotate(&img, 180.0, Interpolation::Nearest, &[0]);
    assert_eq!(out.data, vec![8, 7, 6, 5, 4, 3, 2, 1, 0]);
    // RandomRotation with a degenerate range draws exactly that angle.
    let t = RandomRotation::new(0.0).unwrap().with_range(-90.0, -90.0);
    let out = pixels(t.apply(Sample::Pixels(img), &mut rng()).unwrap());
    assert_eq!(out.data, vec![6, 3, 0, 7, 4, 1, 8, 5, 2]);
}

#[test]
fn rotation_fills_what_comes_from_outside() {
    let img = Image::new(10, 10, 3, vec![100; 300]);
    for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
        let out = rotate(&img, 45.0, interp, &[1, 2, 3]);
        // The corner's centre (0.5, 0.5) maps back to about (5, -2.07): outside.
        assert_eq!(out.pixel(0, 0), &[1, 2, 3], "{interp:?}");
        // The centre stays inside.
        assert_eq!(out.pixel(5, 5), &[100, 100, 100], "{interp:?}");
    }
}

#[test]
fn color_jitter_factors_and_formulas() {
    let img = Image::new(4, 1, 1, vec![0, 100, 200, 250]);
    let b = ColorJitter {
        brightness: Some((0.5, 0.5)),
        ..Default::default()
    };
    let out = pixels(b.apply(Sample::Pixels(img.clone()), &mut rng()).unwrap());
    assert_eq!(out.data, vec![0, 50, 100, 125]);
    // Brightness 2 clamps at 255.
    let b = ColorJitter {
        brightness: Some((2.0, 2.0)),
        ..Default::default()
    };
    assert_eq!(
        pixels(b.apply(Sample::Pixels(img), &mut rng()).unwrap()).data,
        vec![0, 200, 255, 255]
    );

    let rgb = Image::new(2, 1, 3, vec![255, 0, 0, 0, 0, 255]);
    // Contrast 0: every value is the mean gray, (0.2989 + 0.114) / 2 * 255 = 52.6 -> 53.
    let c = ColorJitter {
        contrast: Some((0.0, 0.0)),
        ..Default::default()
    };
    assert_eq!(
        pixels(c.apply(Sample::Pixels(rgb.clone()), &mut rng()).unwrap()).data,
        vec![53; 6]
    );
    // Saturation 0: each pixel becomes its own gray: 0.2989 * 255 = 76.2, 0.114 * 255 = 29.1.
    let s = ColorJitter {
        saturation: Some((0.0, 0.0)),
        ..Default::default()
    };
    assert_eq!(
        pixels(s.apply(Sample::Pixels(rgb.clone()), &mut rng()).unwrap()).data,
        vec![76, 76, 76, 29, 29, 29]
    );
    // Hue +1/3: red -> green, blue -> red; +1/2: red -> cyan.
    let h = ColorJitter {
        hue: Some((1.0 / 3.0, 1.0 / 3.0)),
        ..Default::default()
    };
    assert_eq!(
        pixels(h.apply(Sample::Pixels(rgb.clone()), &mut rng()).unwrap()).data,
        vec![0, 255, 0, 255, 0, 0]
    );
    let h = ColorJitter {
        hue: Some((0.5, 0.5)),
        ..Default::default()
    };
    assert_eq!(
        pixels(h.apply(Sample::Pixels(rgb), &mut rng()).unwrap()).data,
        vec![0, 255, 255, 255, 255, 0]
    );
}

#[test]
fn color_jitter_ranges_and_random_order() {
    let j = ColorJitter::new(0.4, 0.4, 0.4, 0.1).unwrap();
    assert_eq!(j.brightness, Some((0.6, 1.4)));
    assert_eq!(j.hue, Some((-0.1, 0.1)));
    assert_eq!(
        ColorJitter::new(1.5, 0.0, 0.0, 0.0).unwrap().brightness,
        Some((0.0, 2.5))
    );
    assert_eq!(
        ColorJitter::new(0.0, 0.0, 0.0, 0.0).unwrap().brightness,
        None
    );
    assert!(ColorJitter::new(0.0, 0.0, 0.0, 0.6).is_err());
    let mut orders = std::collections::BTreeSet::new();
    let mut r = Rng::seed_from_u64(3);
    for _ in 0..2000 {
        let (order, f) = j.params(&mut r);
        let mut sorted = order;
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3]);
        orders.insert(order);
        assert!((0.6..1.4).contains(&f[0].unwrap()) && (-0.1..0.1).contains(&f[3].unwrap()));
    }
    assert_eq!(orders.len(), 24);
    // The order is drawn per sample, and it matters. Brightness 2 with contrast 0, over 40 seeds:
    let bc = ColorJitter {
        brightness: Some((2.0, 2.0)),
        contrast: Some((0.0, 0.0)),
        ..Default::default()
    };
    let outcomes = |data: Vec<u8>| -> std::collections::BTreeSet<Vec<u8>> {
        (0..40)
            .map(|s| {
                let img = Image::new(2, 1, 1, data.clone());
                pixels(
                    bc.apply(Sample::Pixels(img), &mut Rng::seed_from_u64(s))
                        .unwrap(),
                )
                .data
            })
            .collect()
    };
    // Without clamping both orders agree (linear): contrast first gives mean 40, doubled to 80;
    // brightness first gives (40, 120), whose mean is 80.
    assert_eq!(outcomes(vec![20, 60]), [vec![80, 80]].into());
    // With clamping they differ: contrast first gives 150, doubled and clamped to 255;
    // brightness first gives (200, 255), whose mean 227.5 PIL rounds to 228.
    assert_eq!(
        outcomes(vec![100, 200]),
        [vec![255, 255], vec![228, 228]].into()
    );
}

#[test]
fn to_tensor_and_normalize_arithmetic() {
    let img = Image::new(2, 1, 3, vec![255, 0, 51, 0, 255, 102]);
    let t = match ToTensor.apply(Sample::Pixels(img), &mut rng()).unwrap() {
        Sample::Tensor(t) => t,
        _ => panic!(),
    };
    assert_eq!((t.channels, t.height, t.width), (3, 1, 2));
    assert_eq!(t.data, vec![1.0, 0.0, 0.0, 1.0, 0.2, 0.4]);
    let n = Normalize::new(vec![0.5, 0.5, 0.5], vec![0.5, 0.25, 2.0]).unwrap();
    let t = TensorImage {
        channels: 3,
        height: 1,
        width: 1,
        data: vec![0.5, 0.25, 1.0],
    };
    match n.apply(Sample::Tensor(t), &mut rng()).unwrap() {
        Sample::Tensor(t) => assert_eq!(t.data, vec![0.0, -1.0, 0.25]),
        _ => panic!(),
    }
    assert!(Normalize::new(vec![0.5], vec![0.0]).is_err());
    // Out of place: Normalize needs a tensor, Resize needs pixels.
    let err = n
        .apply(Sample::Pixels(gray(1, 1, &[0])), &mut rng())
        .unwrap_err();
    assert!(err.to_string().contains("after ToTensor"), "{err}");
}

#[test]
fn presets_follow_timm() {
    let cfg = PretrainedCfg::from_json(&serde_json::json!({
        "architecture": "resnet18",
        "pretrained_cfg": {
            "input_size": [3, 224, 224], "crop_pct": 0.875, "interpolation": "bicubic",
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]
        }
    }))
    .unwrap();
    let eval = eval_transforms(&cfg).unwrap();
    // A 500x375 image of constant value 128: resize shorter side to floor(224 / 0.875) = 256,
    // centre crop 224, then (128/255 - mean) / std per channel.
    let img = Image::new(500, 375, 3, vec![128; 500 * 375 * 3]);
    let t = eval.run(img.clone(), &mut rng()).unwrap();
    assert_eq!((t.channels, t.height, t.width), (3, 224, 224));
    for (c, (m, s)) in [(0.485f32, 0.229f32), (0.456, 0.224), (0.406, 0.225)]
        .iter()
        .enumerate()
    {
        let want = (128.0 / 255.0 - m) / s;
        assert!((t.data[c * 224 * 224 + 1000] - want).abs() < 1e-5);
    }
    // The eval resize is to 256: a 256x256 image is only cropped (its centre 224x224 region).
    let ramp = Image::new(
        256,
        256,
        3,
        (0..256 * 256 * 3).map(|i| ((i / 3) % 256) as u8).collect(),
    );
    let plain = Compose::new()
        .then(Resize::new(ResizeTo::Shorter(256), Interpolation::Bicubic))
        .then(CenterCrop::new(224, 224));
    let cropped = match plain.apply(Sample::Pixels(ramp), &mut rng()).unwrap() {
        Sample::Pixels(i) => i,
        _ => panic!(),
    };
    assert_eq!(cropped.pixel(0, 0), &[16, 16, 16]);

    let train = train_transforms(&cfg, &TrainAugment::default()).unwrap();
    let a = train.run(img.clone(), &mut Rng::seed_from_u64(1)).unwrap();
    let b = train.run(img, &mut Rng::seed_from_u64(1)).unwrap();
    assert_eq!((a.channels, a.height, a.width), (3, 224, 224));
    assert_eq!(a, b);
    // crop_pct 0.9: the eval resize is to floor(224 / 0.9) = 248 (not 249, not 256). A
    // 248x248 horizontal ramp (value = column) is then left as it is and only centre-cropped at
    // offset (248 - 224) / 2 = 12, so columns 0 and 223 hold 12 and 235. (A resize to 249
    // would read column 223 from input x = (223 + 12 + 0.5) * 248 / 249 - 0.5 = 234.05.)
    let mut cfg9 = cfg.clone();
    cfg9.crop_pct = 0.9;
    let ramp = Image::new(
        248,
        248,
        3,
        (0..248 * 248 * 3).map(|i| ((i / 3) % 248) as u8).collect(),
    );
    let t = eval_transforms(&cfg9)
        .unwrap()
        .run(ramp, &mut rng())
        .unwrap();
    assert_eq!((t.channels, t.height, t.width), (3, 224, 224));
    let norm = |v: f32| (v / 255.0 - 0.485) / 0.229;
    for (col, want) in [(0, 12.0), (223, 235.0)] {
        let got = t.data[5 * 224 + col];
        assert!((got - norm(want)).abs() < 1e-5, "column {col}: {got}");
    }
}
