//! Reports of the loop's notable moments through `tracing`.
//!
//! With the optional `tracing` feature, fdloop emits an event (target
//! `"fdloop"`) when it takes a fallback (a pipe instead of an eventfd, a
//! millisecond timeout instead of `epoll_pwait2`, SIGCHLD instead of a
//! pidfd, ...), when a source is paused or resumed, and when a callback's
//! panic unwinds through the loop. Without the feature the macro expands to
//! nothing: its arguments are not even evaluated, so it costs nothing.

/// `notable!(level, ...)`: a `tracing` event at `level` (`warn`, `info`,
/// `debug`, `trace`) with target `"fdloop"`, or nothing without the
/// `tracing` feature. The arguments are those of `tracing`'s macros.
macro_rules! notable {
    ($level:ident, $($arg:tt)+) => {
        #[cfg(feature = "tracing")]
        {
            ::tracing::$level!(target: "fdloop", $($arg)+);
        }
    };
}

pub(crate) use notable;
