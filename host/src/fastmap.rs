//! Hash maps for the hot, id-keyed tables of the task path (the object
//! store, owners, lineage, the task table, logs, sessions).
//!
//! std's default hasher (SipHash-1-3) cost ~6% of the RPC thread's time per
//! task, hashing `u64` ids several times over. foldhash's `fast` hasher is
//! one folded multiply per `u64`, and is seeded at random per map (from a
//! per-process random seed), so ids a driver chooses cannot be crafted into
//! colliding ones without knowing the seed.

pub type Hasher = foldhash::fast::RandomState;
pub type FastMap<K, V> = std::collections::HashMap<K, V, Hasher>;
pub type FastSet<K> = std::collections::HashSet<K, Hasher>;
