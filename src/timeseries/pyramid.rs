//! The per-channel min/max pyramid that lets a range query skip over raw samples.
//!
//! Level 0 of the pyramid is the raw column itself (it is not copied). Stored level
//! `k` (`levels[k - 1]`) holds one [`MinMax`] per complete, aligned block of
//! `FANOUT^k` raw samples. Only complete blocks are stored, so every level is a pure
//! function of the raw column: `levels[k].len() == raw.len() / FANOUT^(k + 1)`.
//!
//! A range `[lo, hi)` is answered by climbing: at each level the ragged edges (fewer
//! than `FANOUT` entries on each side) are folded in, and the whole blocks between them
//! are handed to the level above. The cost is at most `2 · FANOUT` entries per level,
//! so O(FANOUT · log n) whatever the length of the range.

/// Entries per block, at every level.
///
/// 16 keeps the pyramid at 8 / 15 ≈ 0.53 bytes per raw sample per channel (8 being
/// one `MinMax`), against 1.14 for a fanout of 8, while a query still touches at most
/// ~30 entries per level; the edges it folds are contiguous, so they are cheap.
pub(super) const FANOUT: usize = 16;

/// Smallest allocation a growing column starts from, in elements.
const MIN_ALLOC: usize = 64;

/// The minimum and maximum of a set of values, ignoring NaN.
///
/// The empty set is `{ min: +inf, max: -inf }`, so merging needs no special case and
/// emptiness is `min > max`. NaN is never stored: every comparison with NaN is false,
/// so folding skips it, and the accumulator starts (and stays) non-NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct MinMax {
    /// Smallest value seen.
    pub min: f32,
    /// Largest value seen.
    pub max: f32,
}

impl MinMax {
    /// The summary of no values (or of NaN values only).
    pub const EMPTY: Self = Self {
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };

    /// True when no non-NaN value went into this summary.
    pub fn is_empty(self) -> bool {
        self.min > self.max
    }

    /// This summary with one more raw value (NaN is ignored).
    ///
    /// A compare-and-select rather than `f32::min`: a comparison with NaN is false, so
    /// NaN is skipped for free, and it compiles to a bare `minss`/`maxss` (and
    /// vectorises in [`Self::of_values`]) without `f32::min`'s NaN fix-up.
    fn with_value(self, value: f32) -> Self {
        Self {
            min: if value < self.min { value } else { self.min },
            max: if value > self.max { value } else { self.max },
        }
    }

    /// The union of two summaries.
    fn merge(self, other: Self) -> Self {
        Self {
            min: if other.min < self.min {
                other.min
            } else {
                self.min
            },
            max: if other.max > self.max {
                other.max
            } else {
                self.max
            },
        }
    }

    /// Summary of raw values.
    pub fn of_values(values: &[f32]) -> Self {
        // Independent lanes break the dependency chain of one accumulator, so long
        // runs (a zero-width range, the top of the pyramid) go at vector speed.
        const LANES: usize = 8;
        let chunks = values.chunks_exact(LANES);
        let tail = chunks.remainder();
        let mut lanes = [Self::EMPTY; LANES];
        for chunk in chunks {
            for (lane, &value) in lanes.iter_mut().zip(chunk) {
                *lane = lane.with_value(value);
            }
        }
        let acc = lanes.into_iter().fold(Self::EMPTY, Self::merge);
        tail.iter().fold(acc, |acc, &v| acc.with_value(v))
    }

    /// Summary of summaries.
    fn of_summaries(summaries: &[Self]) -> Self {
        summaries.iter().fold(Self::EMPTY, |acc, &s| acc.merge(s))
    }
}

/// Pushes `item`, growing `column` by doubling but never past `bound_len` elements.
///
/// `Vec::push` alone may double a capacity past the store's bound; growing by hand
/// keeps `capacity() <= bound_len` for every column, which is what makes the memory
/// bound hold. (If a caller ever pushed past `bound_len`, this still grows by one
/// rather than panic; the store never does.)
pub(super) fn push_bounded<T>(column: &mut Vec<T>, item: T, bound_len: usize) {
    if column.len() == column.capacity() {
        let grown = column
            .capacity()
            .saturating_mul(2)
            .max(MIN_ALLOC)
            .min(bound_len)
            .max(column.len() + 1);
        column.reserve_exact(grown - column.len());
    }
    column.push(item);
}

/// Number of stored levels a column of at most `capacity_samples` can ever need.
pub(super) fn max_levels(capacity_samples: usize) -> usize {
    let mut levels = 0;
    let mut block = FANOUT;
    while block <= capacity_samples {
        levels += 1;
        block = block.saturating_mul(FANOUT);
        if block == usize::MAX {
            break;
        }
    }
    levels
}

/// Upper bound on [`Pyramid::heap_bytes`] for a column of `capacity_samples` raw
/// samples: each level's entries plus the level list itself.
pub(super) fn max_heap_bytes(capacity_samples: usize) -> usize {
    let mut bytes = max_levels(capacity_samples) * size_of::<Vec<MinMax>>();
    let mut block = FANOUT;
    for _ in 0..max_levels(capacity_samples) {
        bytes = bytes.saturating_add((capacity_samples / block) * size_of::<MinMax>());
        block = block.saturating_mul(FANOUT);
    }
    bytes
}

/// Min/max summaries of one raw column at block sizes `FANOUT^1, FANOUT^2, …`.
#[derive(Debug, Clone)]
pub(super) struct Pyramid {
    /// `levels[k]` summarises aligned blocks of `FANOUT^(k + 1)` raw samples.
    levels: Vec<Vec<MinMax>>,
    /// Bound on the raw column's length; level `k` never holds more than
    /// `capacity_samples / FANOUT^(k + 1)` entries.
    capacity_samples: usize,
}

impl Pyramid {
    /// An empty pyramid for a column that never exceeds `capacity_samples`.
    pub fn new(capacity_samples: usize) -> Self {
        Self {
            // Sized once, exactly: the level list never grows past this.
            levels: Vec::with_capacity(max_levels(capacity_samples)),
            capacity_samples,
        }
    }

    /// Longest level `level` may become.
    fn level_bound(&self, level: usize) -> usize {
        let mut block = FANOUT;
        for _ in 0..level {
            block = block.saturating_mul(FANOUT);
        }
        self.capacity_samples / block
    }

    /// Appends `summary` to level `level`, creating the level on its first entry.
    fn push_summary(&mut self, level: usize, summary: MinMax) {
        let bound = self.level_bound(level);
        if level == self.levels.len() {
            self.levels.push(Vec::new());
        }
        if let Some(column) = self.levels.get_mut(level) {
            push_bounded(column, summary, bound);
        }
    }

    /// Updates the pyramid after one value was appended to `raw`. Amortised O(1): a
    /// block closes at level `k` once every `FANOUT^k` pushes.
    pub fn after_push(&mut self, raw: &[f32]) {
        let len = raw.len();
        if len == 0 || !len.is_multiple_of(FANOUT) {
            return;
        }
        self.close_block(MinMax::of_values(&raw[len - FANOUT..]));
    }

    /// Appends the summary of a just-completed block of `FANOUT` raw samples, and of
    /// every higher block it completes in turn.
    fn close_block(&mut self, block: MinMax) {
        self.push_summary(0, block);
        let mut level = 0;
        while let Some(column) = self.levels.get(level) {
            let len = column.len();
            if len == 0 || !len.is_multiple_of(FANOUT) {
                return;
            }
            let block = MinMax::of_summaries(&column[len - FANOUT..]);
            level += 1;
            self.push_summary(level, block);
        }
    }

    /// Recomputes every level from `raw`, keeping the allocations (used after the
    /// store rewrote the column in place).
    pub fn rebuild(&mut self, raw: &[f32]) {
        for column in &mut self.levels {
            column.clear();
        }
        for chunk in raw.chunks_exact(FANOUT) {
            self.close_block(MinMax::of_values(chunk));
        }
    }

    /// Min/max of `raw[lo..hi]` (indices clamped to the column), using whole blocks
    /// wherever they fit.
    pub fn range(&self, raw: &[f32], lo: usize, hi: usize) -> MinMax {
        let hi = hi.min(raw.len());
        if lo >= hi {
            return MinMax::EMPTY;
        }
        let (up_lo, up_hi) = (lo.div_ceil(FANOUT), hi / FANOUT);
        if up_lo >= up_hi || self.levels.is_empty() {
            return MinMax::of_values(&raw[lo..hi]);
        }
        let mut acc = MinMax::of_values(&raw[lo..up_lo * FANOUT])
            .merge(MinMax::of_values(&raw[up_hi * FANOUT..hi]));
        let (mut lo, mut hi) = (up_lo, up_hi);
        for (level, column) in self.levels.iter().enumerate() {
            // By the length invariant `hi <= column.len()`; `get` keeps a broken
            // invariant from becoming a panic in the plot path.
            debug_assert!(hi <= column.len(), "pyramid level {level} too short");
            let hi_here = hi.min(column.len());
            let (up_lo, up_hi) = (lo.div_ceil(FANOUT), hi_here / FANOUT);
            let top = level + 1 == self.levels.len();
            if top || up_lo >= up_hi {
                let middle = column.get(lo..hi_here).unwrap_or_default();
                return acc.merge(MinMax::of_summaries(middle));
            }
            let left = column.get(lo..up_lo * FANOUT).unwrap_or_default();
            let right = column.get(up_hi * FANOUT..hi_here).unwrap_or_default();
            acc = acc
                .merge(MinMax::of_summaries(left))
                .merge(MinMax::of_summaries(right));
            (lo, hi) = (up_lo, up_hi);
        }
        acc
    }

    /// Heap bytes held, counted by capacity (what the allocator actually gave).
    pub fn heap_bytes(&self) -> usize {
        let levels: usize = self
            .levels
            .iter()
            .map(|column| column.capacity() * size_of::<MinMax>())
            .sum();
        levels + self.levels.capacity() * size_of::<Vec<MinMax>>()
    }
}
