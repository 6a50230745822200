//! Crash points for tests of the flusher's crash safety. Built only with the `failpoints`
//! feature; arm one with `FAILPOINTS=<name>=return` and the process aborts right there,
//! like a `kill -9` at the worst moment.

/// Aborts the process if the failpoint `name` is armed; a no-op in normal builds.
pub fn crash_point(name: &str) {
    #[cfg(feature = "failpoints")]
    fail::fail_point!(name, |_| -> () {
        eprintln!("failpoint {name}: aborting");
        std::process::abort()
    });
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Where an armed failpoint may also `panic` (e.g. `FAILPOINTS=flush-cycle=1*panic`) to
/// exercise the flusher's supervisor; a no-op in normal builds.
pub fn panic_point(name: &str) {
    #[cfg(feature = "failpoints")]
    fail::fail_point!(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Arms the failpoints named in `FAILPOINTS`; keep the guard for the process lifetime.
#[cfg(feature = "failpoints")]
pub fn setup() -> fail::FailScenario<'static> {
    fail::FailScenario::setup()
}

/// True where an armed failpoint (`FAILPOINTS=<name>=1*return`) asks the caller to fail as
/// if an outside system had; always false in normal builds.
pub fn error_point(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    fail::fail_point!(name, |_| true);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
    false
}
