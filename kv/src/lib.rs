//! Redis-or-in-process primitives (cache, broker, counters, presence) behind one breaker.
