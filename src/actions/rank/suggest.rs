//! Suggestions for unknown action keys and misspelt parameter names.

use crate::actions::{CATALOG, key_for};

/// The keys closest to an unknown name, closest first (at most `n`).
pub fn suggest(unknown: &str, n: usize) -> Vec<&'static str> {
    let wanted = normalise(unknown);
    let wanted_words: Vec<&str> = wanted.split('-').filter(|w| !w.is_empty()).collect();
    let mut scored: Vec<(f32, &'static str)> = CATALOG
        .iter()
        .filter_map(|a| {
            let distance = edit_distance(&wanted, a.key);
            let shared = a
                .key
                .split('-')
                .filter(|k| wanted_words.contains(k))
                .count();
            let close = distance <= (wanted.len() / 3).max(2);
            (close || shared > 0).then_some((distance as f32 - 2.0 * shared as f32, a.key))
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(n).map(|(_, k)| k).collect()
}

/// The candidate nearest to a misspelt name, if any is near enough to be a typo.
pub(in crate::actions) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A name as a key: camelCase function names become kebab-case, everything lower case.
fn normalise(name: &str) -> String {
    let trimmed = name.trim().trim_matches('/');
    if trimmed.contains(['-', '_', ' ']) || !trimmed.chars().any(|c| c.is_ascii_uppercase()) {
        trimmed.to_lowercase().replace(['_', ' '], "-")
    } else {
        key_for(trimmed)
    }
}

/// Edit distance counting an adjacent transposition as one edit (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            current[j] = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}
