//! Finding actions from plain words ([`rank`]) and from misspelt keys ([`suggest`]).
//!
//! Each query word, and each of its synonyms, is looked up in the words of an action's key
//! (weight 3), tag (1.5) and summary (1); the best hit per query word counts. A bonus for
//! the share of the key's words that the query explains makes `list products` prefer
//! `list-products` over `list-product-groups`.

mod suggest;
mod words;

use std::sync::LazyLock;

use super::{ActionDef, CATALOG};
pub(super) use suggest::closest;
pub use suggest::suggest;
use words::{STOPWORDS, SYNONYMS, stem, words};

/// Words of one action, stemmed, by where they occur.
struct Words {
    key: Vec<String>,
    tag: Vec<String>,
    summary: Vec<String>,
}

static INDEX: LazyLock<Vec<Words>> = LazyLock::new(|| {
    CATALOG
        .iter()
        .map(|a| Words {
            key: a.key.split('-').map(stem).collect(),
            tag: words(a.tag).collect(),
            summary: words(a.summary).collect(),
        })
        .collect()
});

/// How well one word (or a synonym of it) matches an action: key 3, tag 1.5, summary 1.
fn word_score(alternatives: &[String], w: &Words) -> (f32, Option<usize>) {
    let mut best = (0.0, None);
    for a in alternatives {
        let hit = if let Some(i) = w.key.iter().position(|k| k == a) {
            (3.0, Some(i))
        } else if let Some(i) = w
            .key
            .iter()
            .position(|k| a.len() >= 4 && k.len() >= 4 && k.starts_with(a.as_str()))
        {
            (2.0, Some(i))
        } else if w.tag.contains(a) {
            (1.5, None)
        } else if w.summary.contains(a) {
            (1.0, None)
        } else {
            (0.0, None)
        };
        if hit.0 > best.0 {
            best = hit;
        }
    }
    best
}

/// Actions relevant to plain words, best first; only those with a score above zero.
pub fn rank(intent: &str) -> Vec<(&'static ActionDef, f32)> {
    let query: Vec<Vec<String>> = intent
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !STOPWORDS.contains(&w.as_str()))
        .map(|w| {
            let w = stem(&w);
            let mut alternatives = vec![w.clone()];
            if let Some((_, syn)) = SYNONYMS.iter().find(|(s, _)| *s == w) {
                alternatives.extend(syn.iter().map(|s| stem(s)));
            }
            alternatives
        })
        .collect();
    let mut ranked: Vec<(&'static ActionDef, f32)> = CATALOG
        .iter()
        .zip(INDEX.iter())
        .filter_map(|(action, w)| {
            let mut covered = vec![false; w.key.len()];
            let mut score = 0.0;
            for alternatives in &query {
                let (s, key_word) = word_score(alternatives, w);
                score += s;
                if let Some(i) = key_word {
                    covered[i] = true;
                }
            }
            // Prefer actions whose name is mostly explained by the query.
            let coverage = covered.iter().filter(|c| **c).count() as f32 / covered.len() as f32;
            (score > 0.0).then_some((action, score + coverage))
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(a.0.key.len().cmp(&b.0.key.len()))
            .then(a.0.key.cmp(b.0.key))
    });
    ranked
}
