//! The media shards' scheduling priority. On a box whose cores are busy, a shard thread at the
//! default priority waits behind the runtime's workers, the recorder and other processes, and
//! its 2 ms slots start tens of milliseconds late (docs/benchmarks.md, "Headroom"); a lower
//! nice value lets the scheduler run it first without the risks of a real-time policy (a shard
//! that spun could never starve the rest of the machine). The script evaluator's threads go the
//! other way (nice 10): a runaway script slows other scripts, not calls.

use tracing::{info, warn};

/// Sets the calling thread's nice value (Linux: `setpriority` on the thread's id). A refusal
/// (a negative value without CAP_SYS_NICE) leaves the default priority; `report_as` names the
/// threads in the log line that says so (None: not said, e.g. for all but the first of a set).
pub(crate) fn set_own_nice(nice: i32, report_as: Option<&str>) {
    if nice == 0 {
        return;
    }
    // SAFETY: gettid has no preconditions; setpriority reads only its integer arguments.
    let result = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    let Some(whose) = report_as.filter(|_| result != 0) else {
        return;
    };
    let error = std::io::Error::last_os_error();
    if error.kind() == std::io::ErrorKind::PermissionDenied {
        info!(
            nice,
            "{whose} keep the default priority: a lower nice value needs CAP_SYS_NICE"
        );
    } else {
        warn!(nice, %error, "{whose} keep the default priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_nice() -> i32 {
        // SAFETY: as above; getpriority's -1 is a value here (errno is not consulted).
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        }
    }

    #[test]
    fn a_thread_takes_its_own_nice_value_and_no_other_thread_does() {
        let before = own_nice();
        // A higher nice value is always allowed, so this holds without privileges.
        let inside = std::thread::spawn(|| {
            set_own_nice(7, Some("test threads"));
            own_nice()
        })
        .join()
        .unwrap();
        assert_eq!(inside, 7);
        assert_eq!(own_nice(), before, "only the calling thread changes");
    }
}
