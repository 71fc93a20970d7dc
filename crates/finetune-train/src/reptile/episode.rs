//! N-way K-shot episodes: `ways` distinct classes drawn from the allowed ones, `shots` support
//! and `query` query images of each, support and query disjoint, the classes relabelled
//! `0..ways` in the random order they were drawn.

use finetune_core::{Error, Result, Rng};

/// One few-shot task: dataset indices with their task labels (`0..ways`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// The dataset's class ids in task-label order: `classes[j]` is task label `j`.
    pub classes: Vec<usize>,
    /// The support set (what the inner loop trains on): `(dataset index, task label)`.
    pub support: Vec<(usize, u32)>,
    /// The query set (what an adapted model is measured on), disjoint from the support.
    pub query: Vec<(usize, u32)>,
}

impl Episode {
    /// The support set's dataset indices and task labels.
    pub fn support_parts(&self) -> (Vec<usize>, Vec<u32>) {
        self.support.iter().copied().unzip()
    }

    /// The query set's dataset indices and task labels.
    pub fn query_parts(&self) -> (Vec<usize>, Vec<u32>) {
        self.query.iter().copied().unzip()
    }
}

/// Draws [`Episode`]s from a labelled dataset, restricted to some of its classes.
#[derive(Debug, Clone)]
pub struct EpisodeSampler {
    /// Each allowed class id with the dataset indices of its examples, ascending.
    by_class: Vec<(usize, Vec<usize>)>,
    ways: usize,
    shots: usize,
    query: usize,
}

impl EpisodeSampler {
    /// A sampler over the examples of `labels` (the class id of each dataset index) whose
    /// class is in `allowed`, drawing `ways`-way episodes of `shots` support and `query` query
    /// examples per class. `names` gives each class id's name for messages. Fails (naming the
    /// setting) on fewer than 2 ways, no shots, more ways than allowed classes, a class that
    /// is not in the data, or a class with fewer than `shots + query` examples.
    pub fn new(
        labels: &[usize],
        names: &[String],
        allowed: &[usize],
        ways: usize,
        shots: usize,
        query: usize,
    ) -> Result<Self> {
        check_shape(ways, shots, allowed.len())?;
        let mut by_class: Vec<(usize, Vec<usize>)> = Vec::with_capacity(allowed.len());
        for &class in allowed {
            if by_class.iter().any(|(c, _)| *c == class) {
                return Err(Error::config(format!(
                    "class {} is listed twice in `classes`",
                    name(names, class)
                )));
            }
            let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
            if idx.len() < shots + query {
                return Err(Error::config(format!(
                    "class {} has {} examples; an episode needs `shots` + `query_shots` = {} \
                     of each class",
                    name(names, class),
                    idx.len(),
                    shots + query
                )));
            }
            by_class.push((class, idx));
        }
        Ok(Self {
            by_class,
            ways,
            shots,
            query,
        })
    }

    /// The allowed class ids, in the order given.
    pub fn classes(&self) -> Vec<usize> {
        self.by_class.iter().map(|(c, _)| *c).collect()
    }

    /// Draws one episode from `rng`: the classes, then each class's examples, in that order.
    pub fn sample(&self, rng: &mut Rng) -> Episode {
        let mut order: Vec<usize> = (0..self.by_class.len()).collect();
        rng.shuffle(&mut order);
        order.truncate(self.ways);
        let mut episode = Episode {
            classes: Vec::with_capacity(self.ways),
            support: Vec::with_capacity(self.ways * self.shots),
            query: Vec::with_capacity(self.ways * self.query),
        };
        for (label, &k) in order.iter().enumerate() {
            let (class, examples) = &self.by_class[k];
            let mut examples = examples.clone();
            rng.shuffle(&mut examples);
            let label = label as u32;
            episode.classes.push(*class);
            let (support, rest) = examples.split_at(self.shots);
            episode.support.extend(support.iter().map(|&i| (i, label)));
            episode
                .query
                .extend(rest[..self.query].iter().map(|&i| (i, label)));
        }
        episode
    }
}

/// The checks on an episode's shape that need no data: at least 2 ways, at least 1 shot, no
/// more ways than `classes`.
pub fn check_shape(ways: usize, shots: usize, classes: usize) -> Result<()> {
    if ways < 2 {
        return Err(Error::config(format!(
            "`ways` must be at least 2 (got {ways})"
        )));
    }
    if shots < 1 {
        return Err(Error::config("`shots` must be at least 1 (got 0)"));
    }
    if ways > classes {
        return Err(Error::config(format!(
            "`ways` is {ways} but there are only {classes} classes to draw from"
        )));
    }
    Ok(())
}

fn name(names: &[String], class: usize) -> String {
    names
        .get(class)
        .map_or_else(|| class.to_string(), |n| format!("\"{n}\""))
}
