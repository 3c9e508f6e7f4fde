//! Group commit: one thread owns the connection and runs every job that is waiting in one
//! transaction, so a burst of call status writes costs one commit (one fsync with
//! `synchronous = FULL`) instead of one each, and no job takes a blocking-pool thread or a lock.
//!
//! Each job runs inside a savepoint of its own: a job that fails has its writes undone while
//! the others of the batch still commit. Every job is answered only after the transaction is
//! committed, so what a caller is told is stored is on disk ("durable before acknowledged").
//! If the commit itself fails, every job of the batch is answered with that error.

use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;

use crate::StoreError;

/// Answers a job once its batch's commit is known (`Err`: the commit failed).
pub(crate) type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Work on the connection: whether it failed (its savepoint is rolled back) and its answer.
pub(crate) type Job = Box<dyn FnOnce(&mut Connection) -> (bool, Reply) + Send>;

/// Jobs run in one transaction at most: a bound on how long the first of them waits.
const MAX_BATCH: usize = 256;

/// Starts the writer thread over `conn`; jobs go to the returned sender. The thread ends when
/// every sender is gone.
pub(crate) fn start(conn: Connection) -> Result<mpsc::Sender<Job>, StoreError> {
    let (tx, rx) = mpsc::channel::<Job>();
    thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(conn, rx))
        .map_err(|e| StoreError::Task(format!("cannot start the store's writer thread: {e}")))?;
    Ok(tx)
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let began = conn.execute_batch("BEGIN IMMEDIATE");
        for job in batch.drain(..) {
            let in_savepoint = began.is_ok() && conn.execute_batch("SAVEPOINT job").is_ok();
            let (failed, reply) = job(&mut conn);
            if in_savepoint {
                if failed {
                    let _ = conn.execute_batch("ROLLBACK TO job");
                }
                let _ = conn.execute_batch("RELEASE job");
            }
            replies.push(reply);
        }
        let committed = match began {
            Ok(()) => conn.execute_batch("COMMIT").map_err(|e| {
                // A failed COMMIT may leave the transaction open: end it so the next batch
                // starts clean.
                let _ = conn.execute_batch("ROLLBACK");
                e.to_string()
            }),
            // Without a transaction each job committed on its own (autocommit).
            Err(e) => {
                tracing::warn!(error = %e, "store: group commit unavailable for this batch");
                Ok(())
            }
        };
        if let Err(e) = &committed {
            tracing::error!(error = %e, jobs = replies.len(), "store: commit failed");
        }
        for reply in replies.drain(..) {
            reply(
                committed
                    .clone()
                    .map_err(|e| StoreError::Task(format!("commit failed: {e}"))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(sql: &'static str, out: mpsc::Sender<Result<(), String>>) -> Job {
        Box::new(move |conn| {
            let r = conn.execute_batch(sql).map_err(|e| e.to_string());
            let failed = r.is_err();
            (
                failed,
                Box::new(move |committed: Result<(), StoreError>| {
                    let _ = out.send(r.and(committed.map_err(|e| e.to_string())));
                }),
            )
        })
    }

    /// Jobs sent together run in one transaction; a failing job's writes are undone (its
    /// savepoint) and it alone gets the error; the others commit.
    #[test]
    fn a_batch_commits_together_and_a_failed_job_is_undone_alone() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .unwrap();
        let (results_tx, results) = mpsc::channel();
        let jobs = start(conn).unwrap();
        // Queued before the writer can take any: one batch (the writer may already have
        // started on the first; either way every answer follows a commit).
        jobs.send(job("INSERT INTO t VALUES (1)", results_tx.clone()))
            .unwrap();
        jobs.send(job(
            "INSERT INTO t VALUES (2); INSERT INTO t VALUES (1)",
            results_tx.clone(),
        ))
        .unwrap();
        jobs.send(job("INSERT INTO t VALUES (3)", results_tx.clone()))
            .unwrap();
        let got: Vec<Result<(), String>> = (0..3).map(|_| results.recv().unwrap()).collect();
        assert!(got[0].is_ok() && got[2].is_ok(), "{got:?}");
        assert!(
            got[1].as_ref().is_err_and(|e| e.contains("UNIQUE")),
            "{got:?}"
        );
        // What is stored: 1 and 3, not the failed job's 2.
        let (tx, rx) = mpsc::channel();
        jobs.send(Box::new(move |conn: &mut Connection| {
            let rows: Vec<i64> = conn
                .prepare("SELECT x FROM t ORDER BY x")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            let _ = tx.send(rows);
            (false, Box::new(|_| {}) as Reply)
        }))
        .unwrap();
        assert_eq!(rx.recv().unwrap(), vec![1, 3]);
    }
}
