//! Columnar telemetry samples and per-pixel min/max aggregation.
//!
//! The live plots (needle speed, depth) read from a [`TimeSeries`]. Each frame they ask
//! for the visible time range at one bucket per pixel column and get back at most two
//! points per pixel ([`TimeSeries::plot_points`]): `egui_plot` is never handed every
//! sample, so a frame costs the same whether the view shows 30 s or the whole session.
//!
//! # Layout
//!
//! One `f64` column of session seconds (non-decreasing) shared by every channel, one
//! `f32` column per channel, and per channel a min/max pyramid (see `pyramid.rs`) over
//! blocks of 16, 256, 4096, … samples. A range query finds each bucket's rows in the
//! time column (searching outward from where a constant sample rate puts the bucket's
//! end, so a uniform stream costs O(1) probes per bucket), then folds whole pyramid
//! blocks plus ragged edges: O(buckets · log n) at worst instead of O(n).
//!
//! # Memory bound
//!
//! `capacity_samples` is a hard bound on the rows held. Columns grow lazily (doubling,
//! capped at the bound), so a short session costs little, and nothing ever grows past
//! it: [`TimeSeries::bytes_used`] never exceeds [`TimeSeries::max_bytes`], which is
//! about `capacity_samples · (8 + 4.53 · channels)` bytes.
//!
//! When a push finds the store full, the oldest half of the rows is **decimated 2:1,
//! min/max-preserving** rather than dropped, because the window's "whole session" view
//! must still show the start of the session, and its spikes. Every group of 4 old rows
//! becomes 2 rows at the group's first and last times, holding each channel's minimum
//! and maximum in the order they occurred. So:
//!
//! - the newest `capacity_samples / 2` rows are always raw (at 1000 Hz, a capacity of
//!   4 Mi keeps the last ~35 min raw, far more than the 30 s follow-live view);
//! - older rows get coarser with age (each compaction halves the resolution of what it
//!   touches), but every channel's extremes survive, and the session's first and last
//!   times are kept exactly;
//! - a compaction rewrites the columns and rebuilds the pyramid: O(capacity) work once
//!   every `capacity / 4` pushes, so amortised O(1) per push, but the one push that
//!   triggers it stalls (~60 ms for 3.6 M rows × 5 channels, see the bench).
//!
//! Values may be NaN (a reading that is missing): they are stored, ignored by every
//! min/max, and left out of plot points. A bucket holding only NaN is skipped.

mod pyramid;

use pyramid::{Pyramid, push_bounded};

/// The smallest capacity a store accepts; smaller requests are raised to it so that a
/// compaction always has whole groups of 4 rows to work on.
pub const MIN_CAPACITY_SAMPLES: usize = 16;

/// Rows per decimation group: 4 rows become 2 (a minimum and a maximum).
const GROUP_ROWS: usize = 4;

/// Identifies one value column of a [`TimeSeries`]; get it from
/// [`TimeSeries::channel`].
///
/// A `Channel` from another store is harmless: queries with an index the store does
/// not have return nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Channel(usize);

impl Channel {
    /// Position of the channel in the store's channel order (the order of `push`'s
    /// `values`).
    #[must_use]
    pub fn index(self) -> usize {
        self.0
    }
}

/// One pixel column of an envelope: the extremes of a channel over a time bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Middle of the bucket, in session seconds.
    pub t_s: f64,
    /// Smallest non-NaN value in the bucket.
    pub min: f32,
    /// Largest non-NaN value in the bucket.
    pub max: f32,
}

/// Why a sample was not stored. The store is unchanged after any of them.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PushError {
    /// The sample's time is NaN or infinite.
    #[error("sample time {t_s} s is not a finite number")]
    NonFiniteTime {
        /// The rejected time, in session seconds.
        t_s: f64,
    },
    /// The sample's time is earlier than the last stored sample's.
    #[error("sample time {t_s} s is before the last stored sample at {last_s} s")]
    TimeWentBackwards {
        /// The rejected time, in session seconds.
        t_s: f64,
        /// Time of the last stored sample, in session seconds.
        last_s: f64,
    },
    /// The sample has a different number of values than the store has channels.
    #[error("sample has {got} values but the store has {expected} channels")]
    WrongValueCount {
        /// Channels in the store.
        expected: usize,
        /// Values in the sample.
        got: usize,
    },
}

/// One channel's raw values and their pyramid.
#[derive(Debug, Clone)]
struct Column {
    /// Raw values, one per row of the time column.
    values: Vec<f32>,
    /// Min/max summaries of `values`.
    pyramid: Pyramid,
}

/// Bounded, columnar in-memory store of telemetry samples, queried per pixel column.
#[derive(Debug, Clone)]
pub struct TimeSeries {
    /// Channel names, in channel order.
    names: Vec<String>,
    /// Session seconds of each row, non-decreasing, all finite.
    t_s: Vec<f64>,
    /// One column per channel, each as long as `t_s`.
    columns: Vec<Column>,
    /// Hard bound on the number of rows.
    capacity_samples: usize,
    /// How many times the oldest half was decimated.
    compactions: u64,
    /// Heap bytes that never change after construction (names and the column list).
    fixed_bytes: usize,
}

/// Maps times in `[t0, t1]` to bucket indices `0..count`.
///
/// The index is `floor((t - t0) · (count / (t1 - t0)))`, clamped to the last bucket.
/// Every step of that is monotone in `t` under IEEE rounding, so the rows of one
/// bucket are contiguous in the sorted time column and the bucket's end can be found
/// by searching on the index itself, with no edge time that rounding could put on the
/// wrong side. A zero-width range (`t0 == t1`) maps everything to bucket 0.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    t0_s: f64,
    span_s: f64,
    count: usize,
    /// `count / span_s`, so that mapping a time costs a multiply, not a divide.
    per_s: f64,
}

impl Buckets {
    #[expect(
        clippy::cast_precision_loss,
        reason = "a bucket count beyond 2^53 only loses sub-bucket precision"
    )]
    fn new(t0_s: f64, t1_s: f64, count: usize) -> Self {
        let span_s = t1_s - t0_s;
        Self {
            t0_s,
            span_s,
            count,
            per_s: count as f64 / span_s,
        }
    }

    /// Bucket of a time in `[t0, t1]`.
    fn index_of(self, t_s: f64) -> usize {
        // `t_s >= t0_s` makes the product non-negative, so truncation is floor; `as`
        // saturates, and maps NaN (0 · inf, from a zero-width range) to bucket 0.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "saturating float-to-int conversion is intended; clamped below"
        )]
        let index = ((t_s - self.t0_s) * self.per_s) as usize;
        index.min(self.count.saturating_sub(1))
    }

    /// Start time of bucket `index` (only used to guess where to search).
    #[expect(
        clippy::cast_precision_loss,
        reason = "bucket positions need no more than f64 precision"
    )]
    fn start_s(self, index: usize) -> f64 {
        self.t0_s + self.span_s * (index as f64 / self.count as f64)
    }

    /// Middle time of bucket `index`.
    #[expect(
        clippy::cast_precision_loss,
        reason = "bucket positions need no more than f64 precision"
    )]
    fn mid_s(self, index: usize) -> f64 {
        self.t0_s + self.span_s * ((index as f64 + 0.5) / self.count as f64)
    }
}

/// `slice.partition_point(pred)` for a `pred` that is true then false, probing
/// outward from `guess` first: O(1) probes when the guess is off by a few entries,
/// O(log distance) otherwise, never worse than twice a plain binary search.
///
/// Telemetry arrives at a near-constant rate, so the row where a bucket ends is
/// predictable; probing there keeps a whole-session query from taking ~20 dependent
/// cache misses per pixel in a time column far larger than the cache.
fn partition_point_near<T>(slice: &[T], guess: usize, pred: impl Fn(&T) -> bool) -> usize {
    let len = slice.len();
    let guess = guess.min(len);
    // Bracket the answer in `lo..=hi`: `pred` holds below `lo` and fails from `hi` on.
    let (mut lo, mut hi) = (0, len);
    let mut step = 1usize;
    if slice.get(guess).is_some_and(&pred) {
        lo = guess + 1;
        while let Some(probe) = slice.get(lo + step - 1) {
            if pred(probe) {
                lo += step;
                step = step.saturating_mul(2);
            } else {
                hi = lo + step - 1;
                break;
            }
        }
    } else {
        hi = guess;
        while hi > 0 {
            let probe_at = hi.saturating_sub(step);
            let Some(probe) = slice.get(probe_at) else {
                break;
            };
            if pred(probe) {
                lo = probe_at + 1;
                break;
            }
            hi = probe_at;
            step = step.saturating_mul(2);
        }
    }
    let hi = hi.min(len).max(lo);
    lo + slice.get(lo..hi).unwrap_or_default().partition_point(pred)
}

impl TimeSeries {
    /// An empty store with one channel per name, holding at most `capacity_samples`
    /// rows (raised to [`MIN_CAPACITY_SAMPLES`]). Nothing is allocated for the rows
    /// until samples arrive.
    #[must_use]
    pub fn new(channel_names: &[&str], capacity_samples: usize) -> Self {
        let capacity_samples = capacity_samples.max(MIN_CAPACITY_SAMPLES);
        let names: Vec<String> = channel_names.iter().map(|&n| n.to_owned()).collect();
        let columns: Vec<Column> = names
            .iter()
            .map(|_| Column {
                values: Vec::new(),
                pyramid: Pyramid::new(capacity_samples),
            })
            .collect();
        let fixed_bytes = names.capacity() * size_of::<String>()
            + names.iter().map(String::capacity).sum::<usize>()
            + columns.capacity() * size_of::<Column>();
        Self {
            names,
            t_s: Vec::new(),
            columns,
            capacity_samples,
            compactions: 0,
            fixed_bytes,
        }
    }

    /// The channel called `name`, if the store has one.
    #[must_use]
    pub fn channel(&self, name: &str) -> Option<Channel> {
        self.names.iter().position(|n| n == name).map(Channel)
    }

    /// Channel names, in channel order.
    #[must_use]
    pub fn channel_names(&self) -> &[String] {
        &self.names
    }

    /// Appends one row: `values` in channel order, at `t_s` session seconds.
    ///
    /// Times must be finite and non-decreasing (equal times are kept). If the store is
    /// full, the oldest half is decimated first (see the module doc).
    pub fn push(&mut self, t_s: f64, values: &[f32]) -> Result<(), PushError> {
        if values.len() != self.columns.len() {
            return Err(PushError::WrongValueCount {
                expected: self.columns.len(),
                got: values.len(),
            });
        }
        if !t_s.is_finite() {
            return Err(PushError::NonFiniteTime { t_s });
        }
        if let Some(&last_s) = self.t_s.last()
            && t_s < last_s
        {
            return Err(PushError::TimeWentBackwards { t_s, last_s });
        }
        if self.t_s.len() >= self.capacity_samples {
            self.decimate_oldest_half();
        }
        push_bounded(&mut self.t_s, t_s, self.capacity_samples);
        for (column, &value) in self.columns.iter_mut().zip(values) {
            push_bounded(&mut column.values, value, self.capacity_samples);
            column.pyramid.after_push(&column.values);
        }
        Ok(())
    }

    /// Rows held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.t_s.len()
    }

    /// True when no row is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.t_s.is_empty()
    }

    /// The hard bound on rows held.
    #[must_use]
    pub fn capacity_samples(&self) -> usize {
        self.capacity_samples
    }

    /// How many times the oldest half has been decimated; 0 means every sample pushed
    /// is still held raw.
    #[must_use]
    pub fn compactions(&self) -> u64 {
        self.compactions
    }

    /// First and last sample times, in session seconds. Decimation keeps both.
    #[must_use]
    pub fn time_range(&self) -> Option<(f64, f64)> {
        Some((*self.t_s.first()?, *self.t_s.last()?))
    }

    /// Heap bytes held: time column, value columns and pyramids counted by capacity,
    /// plus names and bookkeeping.
    #[must_use]
    pub fn bytes_used(&self) -> usize {
        let columns: usize = self
            .columns
            .iter()
            .map(|c| c.values.capacity() * size_of::<f32>() + c.pyramid.heap_bytes())
            .sum();
        self.fixed_bytes + self.t_s.capacity() * size_of::<f64>() + columns
    }

    /// The stated memory bound: [`Self::bytes_used`] never exceeds this, however many
    /// samples are pushed.
    #[must_use]
    pub fn max_bytes(&self) -> usize {
        let per_row = size_of::<f64>() + self.columns.len() * size_of::<f32>();
        let pyramids = self
            .columns
            .len()
            .saturating_mul(pyramid::max_heap_bytes(self.capacity_samples));
        self.fixed_bytes
            .saturating_add(self.capacity_samples.saturating_mul(per_row))
            .saturating_add(pyramids)
    }

    /// [`Self::bytes_used`] divided by the rows held (0 when empty).
    #[must_use]
    #[expect(
        clippy::cast_precision_loss,
        reason = "a ratio for display; byte counts below 2^53 are exact"
    )]
    pub fn bytes_per_sample(&self) -> f64 {
        if self.t_s.is_empty() {
            return 0.0;
        }
        self.bytes_used() as f64 / self.t_s.len() as f64
    }

    /// The latest row's time and `channel`'s value in it (which may be NaN).
    #[must_use]
    pub fn last(&self, channel: Channel) -> Option<(f64, f32)> {
        let value = *self.columns.get(channel.0)?.values.last()?;
        Some((*self.t_s.last()?, value))
    }

    /// Min/max envelope of `channel` over `[t0, t1]` (session seconds, both ends
    /// included) in `buckets` equal-width columns, one per pixel: for each bucket
    /// holding at least one non-NaN value, its middle time and extremes, in time order.
    ///
    /// Uses the pyramid, so the cost is O(buckets · log n), not O(n); only non-empty
    /// buckets are visited, so a huge `buckets` costs at most O(samples in range ·
    /// log n). Empty when `buckets` is 0, when `t0` or `t1` is not finite, when
    /// `t1 < t0`, or when the channel is not in this store. A zero-width range gives at
    /// most one bucket.
    #[must_use]
    pub fn envelope(&self, channel: Channel, t0: f64, t1: f64, buckets: usize) -> Vec<Bucket> {
        let mut out = Vec::new();
        if let Some(query) = self.query(channel, t0, t1, buckets) {
            out.reserve(buckets.min(query.hi - query.lo));
            self.for_each_bucket(&query, |bucket| out.push(bucket));
        }
        out
    }

    /// The points to hand `egui_plot` for a line over `[t0, t1]` at `buckets` pixel
    /// columns, as `[t_s, value]`.
    ///
    /// When the range holds fewer than `2 · buckets` samples these are the raw samples
    /// (NaN values left out). Otherwise each envelope bucket gives two points at its
    /// middle time, `(t, min)` then `(t, max)`, so a one-sample spike still reaches its
    /// peak on screen. Empty in the same cases as [`Self::envelope`].
    #[must_use]
    pub fn plot_points(&self, channel: Channel, t0: f64, t1: f64, buckets: usize) -> Vec<[f64; 2]> {
        let Some(query) = self.query(channel, t0, t1, buckets) else {
            return Vec::new();
        };
        if query.hi - query.lo < buckets.saturating_mul(2) {
            return self.t_s[query.lo..query.hi]
                .iter()
                .zip(&query.column.values[query.lo..query.hi])
                .filter(|(_, v)| !v.is_nan())
                .map(|(&t, &v)| [t, f64::from(v)])
                .collect();
        }
        let mut out = Vec::with_capacity(2 * buckets.min(query.hi - query.lo));
        self.for_each_bucket(&query, |bucket| {
            out.push([bucket.t_s, f64::from(bucket.min)]);
            out.push([bucket.t_s, f64::from(bucket.max)]);
        });
        out
    }

    /// Validates a range query and finds its rows; `None` when it must be empty.
    fn query(&self, channel: Channel, t0: f64, t1: f64, buckets: usize) -> Option<Query<'_>> {
        // NaN fails `is_finite`, so the order test below sees only real numbers.
        if buckets == 0 || !t0.is_finite() || !t1.is_finite() || t1 < t0 {
            return None;
        }
        let column = self.columns.get(channel.0)?;
        let lo = self.t_s.partition_point(|&t| t < t0);
        let hi = self.t_s.partition_point(|&t| t <= t1);
        (lo < hi).then_some(Query {
            column,
            lo,
            hi,
            buckets: Buckets::new(t0, t1, buckets),
        })
    }

    /// Calls `emit` for each non-empty bucket of `query`, in time order.
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "row guesses are estimates; saturating conversion is intended"
    )]
    fn for_each_bucket(&self, query: &Query<'_>, mut emit: impl FnMut(Bucket)) {
        let times = &self.t_s[query.lo..query.hi];
        let (Some(&first_s), Some(&last_s)) = (times.first(), times.last()) else {
            return;
        };
        // Average rows per second over the range, to guess where each bucket ends.
        let rows_per_s = if last_s > first_s {
            (times.len() - 1) as f64 / (last_s - first_s)
        } else {
            0.0
        };
        let mut start = 0;
        while let Some(&t) = times.get(start) {
            let index = query.buckets.index_of(t);
            let next_start_s = query.buckets.start_s(index + 1);
            let guess = ((next_start_s - first_s) * rows_per_s) as usize;
            let rest = times.get(start + 1..).unwrap_or_default();
            let end = start
                + 1
                + partition_point_near(rest, guess.saturating_sub(start + 1), |&t| {
                    query.buckets.index_of(t) <= index
                });
            let summary =
                query
                    .column
                    .pyramid
                    .range(&query.column.values, query.lo + start, query.lo + end);
            if !summary.is_empty() {
                emit(Bucket {
                    t_s: query.buckets.mid_s(index),
                    min: summary.min,
                    max: summary.max,
                });
            }
            start = end;
        }
    }

    /// Halves the oldest half of the rows, 4 rows to 2, keeping each channel's min and
    /// max (in the order they occurred) at the group's first and last times. Then
    /// shifts the newer rows down and rebuilds the pyramids.
    fn decimate_oldest_half(&mut self) {
        let len = self.t_s.len();
        let old = len / 2 / GROUP_ROWS * GROUP_ROWS;
        if old == 0 {
            return;
        }
        let kept = old / 2;
        for group in 0..old / GROUP_ROWS {
            let first = group * GROUP_ROWS;
            self.t_s[2 * group] = self.t_s[first];
            self.t_s[2 * group + 1] = self.t_s[first + GROUP_ROWS - 1];
        }
        self.t_s.copy_within(old..len, kept);
        self.t_s.truncate(len - (old - kept));
        for column in &mut self.columns {
            let values = &mut column.values;
            for group in 0..old / GROUP_ROWS {
                let first = group * GROUP_ROWS;
                let quad = [
                    values[first],
                    values[first + 1],
                    values[first + 2],
                    values[first + 3],
                ];
                let [a, b] = extremes_in_order(quad);
                values[2 * group] = a;
                values[2 * group + 1] = b;
            }
            values.copy_within(old..len, kept);
            values.truncate(len - (old - kept));
            column.pyramid.rebuild(values);
        }
        self.compactions += 1;
    }
}

/// A validated range query: the channel's column and the rows `lo..hi` in range.
struct Query<'a> {
    column: &'a Column,
    lo: usize,
    hi: usize,
    buckets: Buckets,
}

/// The minimum and maximum of `quad` (NaN ignored), earlier-occurring first; both NaN
/// when all four are NaN.
fn extremes_in_order(quad: [f32; GROUP_ROWS]) -> [f32; 2] {
    let mut min_at: Option<usize> = None;
    let mut max_at: Option<usize> = None;
    for (i, &v) in quad.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if min_at.is_none_or(|j| v < quad[j]) {
            min_at = Some(i);
        }
        if max_at.is_none_or(|j| v > quad[j]) {
            max_at = Some(i);
        }
    }
    match (min_at, max_at) {
        (Some(lo), Some(hi)) if lo <= hi => [quad[lo], quad[hi]],
        (Some(lo), Some(hi)) => [quad[hi], quad[lo]],
        _ => [f32::NAN, f32::NAN],
    }
}

#[cfg(test)]
#[expect(
    clippy::float_cmp,
    reason = "values are copied, never computed, so exact comparison is the point"
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute-force envelope over the rows actually held: every row in `[t0, t1]`
    /// goes to the bucket its time maps to, then each bucket is folded directly.
    fn brute_envelope(
        store: &TimeSeries,
        channel: Channel,
        t0: f64,
        t1: f64,
        buckets: usize,
    ) -> Vec<Bucket> {
        if buckets == 0 || !t0.is_finite() || !t1.is_finite() || t1 < t0 {
            return Vec::new();
        }
        let map = Buckets::new(t0, t1, buckets);
        let values = &store.columns[channel.0].values;
        let mut out: Vec<(usize, f32, f32)> = Vec::new();
        for (&t, &v) in store.t_s.iter().zip(values) {
            if t < t0 || t > t1 || v.is_nan() {
                continue;
            }
            let index = map.index_of(t);
            match out.last_mut() {
                Some((i, lo, hi)) if *i == index => {
                    *lo = lo.min(v);
                    *hi = hi.max(v);
                }
                _ => out.push((index, v, v)),
            }
        }
        out.into_iter()
            .map(|(i, min, max)| Bucket {
                t_s: map.mid_s(i),
                min,
                max,
            })
            .collect()
    }

    fn one_channel(capacity_samples: usize) -> (TimeSeries, Channel) {
        let store = TimeSeries::new(&["rpm"], capacity_samples);
        let channel = store.channel("rpm").expect("channel exists");
        (store, channel)
    }

    /// Strategy: non-decreasing times (repeats included) with values that are
    /// sometimes NaN.
    fn samples(max_len: usize) -> impl Strategy<Value = Vec<(f64, f32)>> {
        prop::collection::vec(
            (
                prop_oneof![Just(0.0), 0.0..0.01f64, 0.0..1.0f64],
                prop_oneof![9 => -1000.0..1000.0f32, 1 => Just(f32::NAN)],
            ),
            0..max_len,
        )
        .prop_map(|steps| {
            let mut t = 0.0;
            steps
                .into_iter()
                .map(|(dt, v)| {
                    t += dt;
                    (t, v)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn envelope_matches_brute_force_without_decimation(
            data in samples(6000),
            a in -0.2..1.2f64,
            b in -0.2..1.2f64,
            buckets in prop_oneof![1..8usize, 1..1500usize],
        ) {
            let (mut store, ch) = one_channel(10_000);
            for &(t, v) in &data {
                store.push(t, &[v]).expect("in order");
            }
            prop_assert_eq!(store.compactions(), 0);
            prop_assert_eq!(store.len(), data.len());
            let end = data.last().map_or(1.0, |s| s.0);
            let (t0, t1) = (a.min(b) * end, a.max(b) * end);
            let got = store.envelope(ch, t0, t1, buckets);
            prop_assert_eq!(&got, &brute_envelope(&store, ch, t0, t1, buckets));
            prop_assert!(got.len() <= buckets);

            let points = store.plot_points(ch, t0, t1, buckets);
            let in_range = data.iter().filter(|s| s.0 >= t0 && s.0 <= t1).count();
            if in_range < 2 * buckets {
                let raw: Vec<[f64; 2]> = data
                    .iter()
                    .filter(|s| s.0 >= t0 && s.0 <= t1 && !s.1.is_nan())
                    .map(|s| [s.0, f64::from(s.1)])
                    .collect();
                prop_assert_eq!(points, raw);
            } else {
                prop_assert_eq!(points.len(), 2 * got.len());
            }
        }

        #[test]
        fn envelope_matches_brute_force_after_decimation(
            data in samples(3000),
            capacity in 16..400usize,
            buckets in 1..200usize,
        ) {
            let (mut store, ch) = one_channel(capacity);
            for &(t, v) in &data {
                store.push(t, &[v]).expect("in order");
                prop_assert!(store.len() <= capacity);
            }
            if let Some((t0, t1)) = store.time_range() {
                let mid = 0.5 * (t0 + t1);
                for (lo, hi) in [(t0, t1), (mid, t1), (t0, mid)] {
                    prop_assert_eq!(
                        store.envelope(ch, lo, hi, buckets),
                        brute_envelope(&store, ch, lo, hi, buckets)
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn partition_point_near_matches_partition_point(
            mut data in prop::collection::vec(0..100u32, 0..300),
            split in 0..100u32,
            guess in 0..400usize,
        ) {
            data.sort_unstable();
            prop_assert_eq!(
                partition_point_near(&data, guess, |&x| x < split),
                data.partition_point(|&x| x < split)
            );
        }
    }

    #[test]
    fn empty_store_answers_nothing() {
        let (store, ch) = one_channel(100);
        assert!(store.is_empty());
        assert_eq!(store.len(), 0);
        assert_eq!(store.time_range(), None);
        assert_eq!(store.last(ch), None);
        assert_eq!(store.bytes_per_sample(), 0.0);
        assert!(store.envelope(ch, 0.0, 10.0, 100).is_empty());
        assert!(store.plot_points(ch, 0.0, 10.0, 100).is_empty());
    }

    #[test]
    fn single_sample_gives_one_bucket_or_one_point() {
        let (mut store, ch) = one_channel(100);
        store.push(2.0, &[6000.0]).expect("first sample");
        assert_eq!(store.time_range(), Some((2.0, 2.0)));
        assert_eq!(store.last(ch), Some((2.0, 6000.0)));
        let env = store.envelope(ch, 1.0, 3.0, 10);
        assert_eq!(
            env,
            vec![Bucket {
                t_s: 2.1,
                min: 6000.0,
                max: 6000.0
            }]
        );
        // The whole-session range of a one-sample session has zero width.
        let env = store.envelope(ch, 2.0, 2.0, 10);
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].t_s, 2.0);
        assert_eq!(store.plot_points(ch, 2.0, 2.0, 10), vec![[2.0, 6000.0]]);
    }

    #[test]
    fn ranges_outside_the_data_are_empty() {
        let (mut store, ch) = one_channel(100);
        for i in 0..50 {
            store.push(10.0 + f64::from(i), &[1.0]).expect("in order");
        }
        assert!(store.envelope(ch, 0.0, 9.99, 10).is_empty());
        assert!(store.envelope(ch, 59.01, 1e9, 10).is_empty());
        assert!(store.plot_points(ch, -1e300, 9.0, 10).is_empty());
        // Straddling the end still finds the data inside.
        assert_eq!(store.envelope(ch, 55.0, 1e6, 10).len(), 1);
    }

    #[test]
    fn reversed_nan_and_infinite_ranges_are_empty() {
        let (mut store, ch) = one_channel(100);
        for i in 0..50 {
            store.push(f64::from(i), &[1.0]).expect("in order");
        }
        let bad = [
            (10.0, 5.0),
            (f64::NAN, 5.0),
            (0.0, f64::NAN),
            (f64::NAN, f64::NAN),
            (f64::NEG_INFINITY, f64::INFINITY),
            (0.0, f64::INFINITY),
        ];
        for (t0, t1) in bad {
            assert!(store.envelope(ch, t0, t1, 100).is_empty(), "{t0}..{t1}");
            assert!(store.plot_points(ch, t0, t1, 100).is_empty(), "{t0}..{t1}");
        }
        // Extreme but finite ranges must not panic either.
        assert_eq!(store.envelope(ch, -f64::MAX, f64::MAX, 100).len(), 1);
    }

    #[test]
    fn zero_buckets_is_empty_and_huge_bucket_counts_are_cheap() {
        let (mut store, ch) = one_channel(10_000);
        for i in 0..5000 {
            store
                .push(
                    f64::from(i) * 1e-3,
                    &[f32::from(u16::try_from(i % 7).unwrap_or(0))],
                )
                .expect("in order");
        }
        assert!(store.envelope(ch, 0.0, 5.0, 0).is_empty());
        assert!(store.plot_points(ch, 0.0, 5.0, 0).is_empty());
        // One bucket per sample at most, and only non-empty buckets are visited.
        let env = store.envelope(ch, 0.0, 5.0, usize::MAX);
        assert_eq!(env.len(), 5000);
        assert!(env.windows(2).all(|w| w[0].t_s <= w[1].t_s));
        assert_eq!(store.plot_points(ch, 0.0, 5.0, usize::MAX).len(), 5000);
    }

    #[test]
    fn bad_samples_are_rejected_and_leave_the_store_unchanged() {
        let mut store = TimeSeries::new(&["rpm", "depth_um"], 100);
        store.push(1.0, &[1.0, 2.0]).expect("first sample");
        store.push(1.0, &[3.0, 4.0]).expect("equal time is allowed");
        assert_eq!(
            store.push(0.5, &[1.0, 2.0]),
            Err(PushError::TimeWentBackwards {
                t_s: 0.5,
                last_s: 1.0
            })
        );
        assert!(matches!(
            store.push(f64::NAN, &[1.0, 2.0]),
            Err(PushError::NonFiniteTime { .. })
        ));
        assert!(matches!(
            store.push(f64::INFINITY, &[1.0, 2.0]),
            Err(PushError::NonFiniteTime { .. })
        ));
        assert_eq!(
            store.push(2.0, &[1.0]),
            Err(PushError::WrongValueCount {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(store.len(), 2);
        assert_eq!(store.time_range(), Some((1.0, 1.0)));
        let depth = store.channel("depth_um").expect("channel exists");
        assert_eq!(store.last(depth), Some((1.0, 4.0)));
    }

    #[test]
    fn nan_values_are_ignored_and_all_nan_buckets_skipped() {
        let (mut store, ch) = one_channel(100);
        for (t, v) in [(0.0, 1.0), (0.1, f32::NAN), (0.2, 3.0), (1.5, f32::NAN)] {
            store.push(t, &[v]).expect("in order");
        }
        let env = store.envelope(ch, 0.0, 2.0, 2);
        assert_eq!(
            env,
            vec![Bucket {
                t_s: 0.5,
                min: 1.0,
                max: 3.0
            }]
        );
        assert_eq!(
            store.plot_points(ch, 0.0, 2.0, 100),
            vec![[0.0, 1.0], [0.2, 3.0]]
        );
        assert!(store.last(ch).is_some_and(|(t, v)| t == 1.5 && v.is_nan()));
    }

    #[test]
    fn unknown_or_foreign_channels_answer_nothing() {
        let wide = TimeSeries::new(&["a", "b", "c"], 100);
        let (mut store, _) = one_channel(100);
        store.push(0.0, &[1.0]).expect("first sample");
        assert_eq!(store.channel("nope"), None);
        let foreign = wide.channel("c").expect("channel exists");
        assert!(store.envelope(foreign, 0.0, 1.0, 10).is_empty());
        assert!(store.plot_points(foreign, 0.0, 1.0, 10).is_empty());
        assert_eq!(store.last(foreign), None);
    }

    #[test]
    fn capacity_bound_holds_after_ten_times_capacity() {
        const CAPACITY: usize = 10_000;
        let names = [
            "rpm",
            "rpm_target",
            "depth_um",
            "depth_target_um",
            "zone_limit_um",
        ];
        let mut store = TimeSeries::new(&names, CAPACITY);
        let mut global = [(f32::INFINITY, f32::NEG_INFINITY); 5];
        let mut pushed: Vec<(f64, [f32; 5])> = Vec::new();
        for i in 0..10 * CAPACITY {
            let t = f64::from(u32::try_from(i).unwrap_or(u32::MAX)) * 1e-3;
            // A cheap deterministic wiggle with rare spikes, different per channel.
            let x = u32::try_from(i.wrapping_mul(2_654_435_761) % 10_007).unwrap_or(0);
            let mut row = [0.0f32; 5];
            for (c, v) in row.iter_mut().enumerate() {
                let base = f32::from(u16::try_from(x % 1000).unwrap_or(0));
                *v = base + f32::from(u8::try_from(c).unwrap_or(0)) * 1000.0;
                if x == 5 + u32::try_from(c).unwrap_or(0) {
                    *v = 1e6;
                }
            }
            store.push(t, &row).expect("in order");
            for (g, &v) in global.iter_mut().zip(&row) {
                *g = (g.0.min(v), g.1.max(v));
            }
            pushed.push((t, row));
            assert!(store.len() <= CAPACITY);
            assert!(store.bytes_used() <= store.max_bytes());
        }
        assert!(store.compactions() > 0);
        // The stated bound: ~8 + 4.53 bytes per channel per row of capacity.
        let per_row_bound = 8.0 + 5.0 * (4.0 + 8.0 / 15.0);
        #[expect(
            clippy::cast_precision_loss,
            reason = "test arithmetic on small counts"
        )]
        let bound = CAPACITY as f64 * per_row_bound + 1024.0;
        #[expect(
            clippy::cast_precision_loss,
            reason = "test arithmetic on small counts"
        )]
        let max = store.max_bytes() as f64;
        assert!(max <= bound, "{max} > {bound}");

        // Time range kept exactly; extremes of every channel survive decimation.
        let first = pushed.first().expect("pushed").0;
        let last = pushed.last().expect("pushed").0;
        assert_eq!(store.time_range(), Some((first, last)));
        for (c, name) in names.iter().enumerate() {
            let ch = store.channel(name).expect("channel exists");
            let env = store.envelope(ch, first, last, 1);
            assert_eq!(env.len(), 1);
            assert_eq!((env[0].min, env[0].max), global[c]);
        }
        // The newest half of the capacity is raw.
        let raw_rows = CAPACITY / 2;
        let held = store.len();
        for (k, (t, row)) in pushed[pushed.len() - raw_rows..].iter().enumerate() {
            let r = held - raw_rows + k;
            assert_eq!(store.t_s[r], *t);
            for (c, v) in row.iter().enumerate() {
                assert_eq!(store.columns[c].values[r], *v);
            }
        }
    }

    #[test]
    fn decimation_keeps_extremes_in_time_order() {
        assert_eq!(extremes_in_order([1.0, 5.0, -2.0, 3.0]), [5.0, -2.0]);
        assert_eq!(extremes_in_order([-2.0, 5.0, 1.0, 3.0]), [-2.0, 5.0]);
        assert_eq!(
            extremes_in_order([f32::NAN, 4.0, f32::NAN, f32::NAN]),
            [4.0, 4.0]
        );
        assert!(extremes_in_order([f32::NAN; 4]).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn tiny_and_huge_capacities_are_accepted() {
        let (mut tiny, ch) = one_channel(0);
        assert_eq!(tiny.capacity_samples(), MIN_CAPACITY_SAMPLES);
        for i in 0..1000 {
            tiny.push(f64::from(i), &[1.0]).expect("in order");
            assert!(tiny.len() <= MIN_CAPACITY_SAMPLES);
        }
        assert_eq!(tiny.time_range(), Some((0.0, 999.0)));
        // Old rows are sparse by now, but the envelope still covers them.
        let env = tiny.envelope(ch, 0.0, 999.0, 1);
        assert_eq!((env.len(), env[0].min, env[0].max), (1, 1.0, 1.0));

        let (mut huge, ch) = one_channel(usize::MAX);
        huge.push(0.0, &[1.0]).expect("first sample");
        assert_eq!(huge.max_bytes(), usize::MAX);
        assert!(huge.bytes_used() < 4096);
        assert_eq!(huge.last(ch), Some((0.0, 1.0)));
    }

    #[test]
    fn no_channels_is_a_valid_store() {
        let mut store = TimeSeries::new(&[], 100);
        store.push(0.0, &[]).expect("no values needed");
        assert_eq!(store.len(), 1);
    }
}
