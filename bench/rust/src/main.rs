//! ss-rust-peers - the Rust executors a user would pick instead of
//! smolscale's fibers and channels, on the same workloads, so that
//! bench/rust/run can print them next to the C side.
//!
//!   ss-rust-peers --executor tokio|smol|age --workload NAME
//!                 [--iters N] [--threads N] [--quick] [--seconds S]
//!
//! Prints one tab-separated line on stdout:
//!
//!   workload executor threads iters median_ns min_ns max_ns cpu_s
//!   cpu_per_wall cpu_us_per_msg rate
//!
//! median_ns, min_ns and max_ns are over the wall times of the timed
//! iterations (one iteration = the unit that each workload below names,
//! NOT one task or one message: divide by its count for a per-op figure).
//! cpu_s is user+sys CPU time of the whole process (all threads, the
//! driver thread included; getrusage RUSAGE_SELF) over the timed
//! iterations only.  The last three columns are underloaded_cpu's, "-" for
//! the other workloads.  Every run first warms the pool up (two rounds of
//! 4 x threads empty tasks, spawned and awaited by the driver) and then
//! runs one untimed warm-up iteration of the workload; --iters counts the
//! timed iterations after that.
//!
//! Executors (threads = --threads, default std::thread::available_parallelism):
//!   tokio  tokio 1.24 multi-thread runtime, worker_threads(threads),
//!          enable_time; the driver is Runtime::block_on on the main thread;
//!          channels are tokio::sync::mpsc (bounded) and tokio::sync::oneshot,
//!          except fanout (async_channel: tokio has no multi-consumer queue);
//!          yield is tokio::task::yield_now, sleeping tokio::time::sleep_until
//!          (tokio's timer wheel has 1 ms resolution).
//!   smol   async-executor 1.5 Executor shared by `threads` OS threads, each
//!          running futures_lite::future::block_on(ex.run(shutdown.recv()))
//!          (smol's documented multi-threaded setup; timers then run on
//!          async-io's own "async-io" thread); the driver is
//!          futures_lite::future::block_on on the main thread; channels are
//!          async_channel::bounded, one-shot = async_channel::bounded(1);
//!          yield is futures_lite::future::yield_now, sleeping async_io::Timer::at.
//!   age    async-global-executor 2.3 (the executor async-std uses) with
//!          min = max = `threads` threads; the driver is
//!          async_global_executor::block_on on the main thread (it runs
//!          only the thread-local executor, so every spawned task runs on
//!          the pool); channels, yield and timers as for smol.
//! In all three the driver runs on the main thread, outside the pool, like
//! the main function in bench/workloads.c; "spawn" below is a spawn onto
//! the pool and "await" awaits the task's handle.
//!
//! Workloads (default iters; --quick in brackets):
//!   spawn_one        iteration = the driver spawns one task whose body is
//!                    empty and awaits it.  50,000 iters [10,000].
//!   spawn_many       iteration = the driver spawns 25,000 empty tasks, then
//!                    awaits them in spawn order.  20 [5].
//!   yield_now        iteration = the driver spawns 300 tasks, each yields
//!                    300 times and returns; the driver awaits all 300.  50 [10].
//!   ping_pong        iteration = the driver spawns a server task and a
//!                    client task, both on the pool, sharing one bounded(10)
//!                    request channel.  The client sends 1,000 requests one
//!                    after another, each (i, fresh one-shot reply sender),
//!                    and awaits each reply (i + 1, checked) before the next;
//!                    the server loops: receive, reply, until the request
//!                    channel closes (the client drops its sender when done).
//!                    The driver awaits the client, then the server.  500 [100].
//!   fanout           iteration = one async_channel::bounded(1) (all
//!                    executors); the driver spawns 1,000 receiver tasks that
//!                    each receive exactly one message and return it, then
//!                    one sender task that sends 0..999; the driver awaits
//!                    the sender, then every receiver, and checks the sum.
//!                    200 [50].
//!   context_switch_quiet
//!                    set up once, untimed: a chain of 300 forwarder tasks
//!                    linked by 301 bounded(1) channels; forwarder k loops
//!                    "receive from channel k, send to channel k+1" until its
//!                    input closes.  The driver holds the sender of channel 0
//!                    and the receiver of channel 300, closing the ring.
//!                    iteration = the driver sends one token into channel 0
//!                    and receives it from channel 300: one lap, 300 hops
//!                    on the pool plus the driver's own send and receive.
//!                    Torn down afterwards (driver drops its sender, the
//!                    close cascades, all forwarders awaited).  3,000 [1,000].
//!   context_switch_busy
//!                    as context_switch_quiet with a ring of 30 forwarders,
//!                    plus 300 background tasks spawned after the ring that
//!                    loop { if stop flag set: return; yield } for the whole
//!                    run; iteration = one lap of the token (30 hops).  After
//!                    the timed iterations the driver sets the stop flag
//!                    (an atomic) and awaits the 300, then tears the ring
//!                    down.  1,000 [200].
//!   underloaded_cpu  iteration = 64 producer/consumer pairs, each pair on
//!                    its own bounded(64) channel, delivering a fixed total
//!                    of 50,000 messages/s for --seconds (3 s) [1 s]:
//!                    producer i sends round(50,000 x seconds / 64) messages
//!                    (2,344 for 3 s; 150,016 in all) in batches of 4 (the
//!                    last may be shorter), one batch per absolute deadline
//!                    t0 + i x 5.12 ms / 64 + b x 5.12 ms (b = 0, 1, ...;
//!                    1.28 ms per message and pair, the 64 producers evenly
//!                    staggered), sleeping with the executor's timer until
//!                    each deadline; consumers count until their channel
//!                    closes.  t0 = just before the first spawn; the
//!                    iteration ends when the driver has awaited all 64
//!                    consumers (the producers after them).  Its warm-up is
//!                    the same at 0.25 s.  Extra columns, over the timed
//!                    iterations: cpu_per_wall = cpu_s / their wall time,
//!                    cpu_us_per_msg = cpu_s / messages delivered, rate =
//!                    messages delivered / their wall time.  1 [1].
//! A wrong result (count, sum, value) panics: the program exits non-zero.
use std::future::Future;
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKLOADS: &[&str] = &[
    "spawn_one",
    "spawn_many",
    "yield_now",
    "ping_pong",
    "fanout",
    "context_switch_quiet",
    "context_switch_busy",
    "underloaded_cpu",
];

const MANY: usize = 25_000;
const YIELD_TASKS: usize = 300;
const YIELDS: usize = 300;
const PING_PONGS: u32 = 1_000;
const PING_QUEUE: usize = 10;
const FANOUT: u32 = 1_000;
const RING_QUIET: usize = 300;
const RING_BUSY: usize = 30;
const BUSY_TASKS: usize = 300;
const PAIRS: u64 = 64;
const RATE: u64 = 50_000; // messages per second, all pairs together
const BATCH: u64 = 4;
const PAIR_QUEUE: usize = 64;

// ------------------------------------------------------------ executors

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tokio,
    Smol,
    Age,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tokio => "tokio",
            Kind::Smol => "smol",
            Kind::Age => "age",
        }
    }
}

/// A handle to spawn onto the pool; cheap to clone.
#[derive(Clone)]
enum Ex {
    Tokio(tokio::runtime::Handle),
    Smol(Arc<async_executor::Executor<'static>>),
    Age,
}

enum Join<T> {
    Tokio(tokio::task::JoinHandle<T>),
    Task(async_executor::Task<T>),
}

impl<T> Join<T> {
    async fn join(self) -> T {
        match self {
            Join::Tokio(h) => h.await.expect("task panicked"),
            Join::Task(t) => t.await,
        }
    }
}

impl Ex {
    fn kind(&self) -> Kind {
        match self {
            Ex::Tokio(_) => Kind::Tokio,
            Ex::Smol(_) => Kind::Smol,
            Ex::Age => Kind::Age,
        }
    }

    fn spawn<F>(&self, f: F) -> Join<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self {
            Ex::Tokio(h) => Join::Tokio(h.spawn(f)),
            Ex::Smol(ex) => Join::Task(ex.spawn(f)),
            Ex::Age => Join::Task(async_global_executor::spawn(f)),
        }
    }
}

async fn yield_now(k: Kind) {
    match k {
        Kind::Tokio => tokio::task::yield_now().await,
        _ => futures_lite::future::yield_now().await,
    }
}

async fn sleep_until(k: Kind, t: Instant) {
    match k {
        Kind::Tokio => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        _ => {
            async_io::Timer::at(t).await;
        }
    }
}

/// The pool itself: owns the threads.
struct Pool {
    ex: Ex,
    tokio: Option<tokio::runtime::Runtime>,
    smol: Option<(async_channel::Sender<()>, Vec<std::thread::JoinHandle<()>>)>,
}

impl Pool {
    fn new(k: Kind, threads: usize) -> Pool {
        match k {
            Kind::Tokio => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .enable_time()
                    .build()
                    .expect("tokio runtime");
                Pool { ex: Ex::Tokio(rt.handle().clone()), tokio: Some(rt), smol: None }
            }
            Kind::Smol => {
                let ex = Arc::new(async_executor::Executor::new());
                let (signal, shutdown) = async_channel::unbounded::<()>();
                let handles = (0..threads)
                    .map(|i| {
                        let ex = ex.clone();
                        let shutdown = shutdown.clone();
                        std::thread::Builder::new()
                            .name(format!("smol-{}", i))
                            .spawn(move || {
                                let _ = futures_lite::future::block_on(ex.run(shutdown.recv()));
                            })
                            .expect("thread")
                    })
                    .collect();
                Pool { ex: Ex::Smol(ex), tokio: None, smol: Some((signal, handles)) }
            }
            Kind::Age => {
                async_global_executor::init_with_config(
                    async_global_executor::GlobalExecutorConfig::default()
                        .with_min_threads(threads)
                        .with_max_threads(threads),
                );
                Pool { ex: Ex::Age, tokio: None, smol: None }
            }
        }
    }

    /// Runs the driver future on the calling (main) thread.
    fn block_on<F: Future>(&self, f: F) -> F::Output {
        match self.ex {
            Ex::Tokio(_) => self.tokio.as_ref().unwrap().block_on(f),
            Ex::Smol(_) => futures_lite::future::block_on(f),
            Ex::Age => async_global_executor::block_on(f),
        }
    }

    fn shutdown(mut self) {
        if let Some(rt) = self.tokio.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        if let Some((signal, handles)) = self.smol.take() {
            drop(signal);
            for h in handles {
                let _ = h.join();
            }
        }
        // age: its threads live until the process exits.
    }
}

// ------------------------------------------------------------- channels

/// A bounded channel: tokio::sync::mpsc for tokio, async_channel otherwise.
enum Tx<T> {
    Tokio(tokio::sync::mpsc::Sender<T>),
    Ac(async_channel::Sender<T>),
}

enum Rx<T> {
    Tokio(tokio::sync::mpsc::Receiver<T>),
    Ac(async_channel::Receiver<T>),
}

fn bounded<T>(k: Kind, cap: usize) -> (Tx<T>, Rx<T>) {
    match k {
        Kind::Tokio => {
            let (s, r) = tokio::sync::mpsc::channel(cap);
            (Tx::Tokio(s), Rx::Tokio(r))
        }
        _ => {
            let (s, r) = async_channel::bounded(cap);
            (Tx::Ac(s), Rx::Ac(r))
        }
    }
}

impl<T> Tx<T> {
    /// Err(()) when the receiver is gone.
    async fn send(&self, v: T) -> Result<(), ()> {
        match self {
            Tx::Tokio(s) => s.send(v).await.map_err(|_| ()),
            Tx::Ac(s) => s.send(v).await.map_err(|_| ()),
        }
    }
}

impl<T> Rx<T> {
    /// None when every sender is gone and the channel is empty.
    async fn recv(&mut self) -> Option<T> {
        match self {
            Rx::Tokio(r) => r.recv().await,
            Rx::Ac(r) => r.recv().await.ok(),
        }
    }
}

/// A one-shot reply channel: tokio::sync::oneshot, else async_channel::bounded(1).
enum OTx<T> {
    Tokio(tokio::sync::oneshot::Sender<T>),
    Ac(async_channel::Sender<T>),
}

enum ORx<T> {
    Tokio(tokio::sync::oneshot::Receiver<T>),
    Ac(async_channel::Receiver<T>),
}

fn oneshot<T>(k: Kind) -> (OTx<T>, ORx<T>) {
    match k {
        Kind::Tokio => {
            let (s, r) = tokio::sync::oneshot::channel();
            (OTx::Tokio(s), ORx::Tokio(r))
        }
        _ => {
            let (s, r) = async_channel::bounded(1);
            (OTx::Ac(s), ORx::Ac(r))
        }
    }
}

impl<T> OTx<T> {
    fn send(self, v: T) {
        match self {
            OTx::Tokio(s) => {
                let _ = s.send(v);
            }
            // capacity 1, one message: never full
            OTx::Ac(s) => {
                let _ = s.try_send(v);
            }
        }
    }
}

impl<T> ORx<T> {
    async fn recv(self) -> Option<T> {
        match self {
            ORx::Tokio(r) => r.await.ok(),
            ORx::Ac(r) => r.recv().await.ok(),
        }
    }
}

// ---------------------------------------------------------- measurement

fn cpu_time() -> f64 {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

struct Meas {
    times: Vec<u64>, // ns per timed iteration
    cpu_s: f64,
    extra: Option<(f64, f64, f64)>, // cpu_per_wall, cpu_us_per_msg, rate
}

/// One untimed warm-up run of $body, then $iters timed ones.
macro_rules! timed {
    ($iters:expr, $body:expr) => {{
        $body;
        let iters: usize = $iters;
        let mut times = Vec::with_capacity(iters);
        let cpu0 = cpu_time();
        for _ in 0..iters {
            let t = Instant::now();
            $body;
            times.push(t.elapsed().as_nanos() as u64);
        }
        Meas { times, cpu_s: cpu_time() - cpu0, extra: None }
    }};
}

// ------------------------------------------------------------ workloads

async fn warm_pool(ex: &Ex, threads: usize) {
    for _ in 0..2 {
        let v: Vec<_> = (0..4 * threads).map(|_| ex.spawn(async {})).collect();
        for h in v {
            h.join().await;
        }
    }
}

async fn spawn_one(ex: &Ex) {
    ex.spawn(async {}).join().await;
}

async fn spawn_many(ex: &Ex) {
    let mut v = Vec::with_capacity(MANY);
    for _ in 0..MANY {
        v.push(ex.spawn(async {}));
    }
    for h in v {
        h.join().await;
    }
}

async fn yield_many(ex: &Ex) {
    let k = ex.kind();
    let v: Vec<_> = (0..YIELD_TASKS)
        .map(|_| {
            ex.spawn(async move {
                for _ in 0..YIELDS {
                    yield_now(k).await;
                }
            })
        })
        .collect();
    for h in v {
        h.join().await;
    }
}

async fn ping_pong(ex: &Ex) {
    let k = ex.kind();
    let (tx, mut rx) = bounded::<(u32, OTx<u32>)>(k, PING_QUEUE);
    let server = ex.spawn(async move {
        while let Some((v, reply)) = rx.recv().await {
            reply.send(v + 1);
        }
    });
    let client = ex.spawn(async move {
        for i in 0..PING_PONGS {
            let (otx, orx) = oneshot(k);
            tx.send((i, otx)).await.expect("server gone");
            assert_eq!(orx.recv().await, Some(i + 1), "ping_pong: wrong reply");
        }
    });
    client.join().await;
    server.join().await;
}

async fn fanout(ex: &Ex) {
    let (tx, rx) = async_channel::bounded::<u32>(1);
    let receivers: Vec<_> = (0..FANOUT)
        .map(|_| {
            let rx = rx.clone();
            ex.spawn(async move { rx.recv().await.expect("fanout: closed") as u64 })
        })
        .collect();
    drop(rx);
    let sender = ex.spawn(async move {
        for i in 0..FANOUT {
            tx.send(i).await.expect("fanout: receivers gone");
        }
    });
    sender.join().await;
    let mut sum = 0u64;
    for h in receivers {
        sum += h.join().await;
    }
    assert_eq!(sum, (FANOUT as u64) * (FANOUT as u64 - 1) / 2, "fanout: wrong sum");
}

/// A chain of n forwarders; returns the driver's ends and the tasks.
fn ring(ex: &Ex, n: usize) -> (Tx<u64>, Rx<u64>, Vec<Join<()>>) {
    let k = ex.kind();
    let (first, mut last) = bounded::<u64>(k, 1);
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (next_tx, next_rx) = bounded::<u64>(k, 1);
        let mut input = std::mem::replace(&mut last, next_rx);
        tasks.push(ex.spawn(async move {
            while let Some(v) = input.recv().await {
                if next_tx.send(v).await.is_err() {
                    break;
                }
            }
        }));
    }
    (first, last, tasks)
}

async fn lap(tx: &Tx<u64>, rx: &mut Rx<u64>, token: u64) {
    tx.send(token).await.expect("ring broken");
    assert_eq!(rx.recv().await, Some(token), "ring: wrong token");
}

async fn context_switch(ex: &Ex, iters: usize, busy: bool) -> Meas {
    let k = ex.kind();
    let (tx, mut rx, fwd) = ring(ex, if busy { RING_BUSY } else { RING_QUIET });
    let stop = Arc::new(AtomicBool::new(false));
    let bg: Vec<_> = (0..if busy { BUSY_TASKS } else { 0 })
        .map(|_| {
            let stop = stop.clone();
            ex.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    yield_now(k).await;
                }
            })
        })
        .collect();
    let mut token = 0u64;
    let m = timed!(iters, {
        token += 1;
        lap(&tx, &mut rx, token).await
    });
    stop.store(true, Ordering::Relaxed);
    for h in bg {
        h.join().await;
    }
    drop(tx);
    for h in fwd {
        h.join().await;
    }
    drop(rx);
    m
}

/// One underloaded run; returns the messages delivered.
async fn underloaded(ex: &Ex, seconds: f64) -> u64 {
    let k = ex.kind();
    let per_pair = ((RATE as f64) * seconds / PAIRS as f64).round() as u64;
    let batch_period = Duration::from_nanos(1_000_000_000 * PAIRS * BATCH / RATE);
    let t0 = Instant::now();
    let mut consumers = Vec::with_capacity(PAIRS as usize);
    let mut producers = Vec::with_capacity(PAIRS as usize);
    for i in 0..PAIRS {
        let (tx, mut rx) = bounded::<u64>(k, PAIR_QUEUE);
        consumers.push(ex.spawn(async move {
            let mut n = 0u64;
            while rx.recv().await.is_some() {
                n += 1;
            }
            n
        }));
        producers.push(ex.spawn(async move {
            let mut next = t0 + batch_period * i as u32 / PAIRS as u32;
            let mut sent = 0u64;
            while sent < per_pair {
                sleep_until(k, next).await;
                for _ in 0..BATCH.min(per_pair - sent) {
                    tx.send(sent).await.expect("consumer gone");
                    sent += 1;
                }
                next += batch_period;
            }
        }));
    }
    let mut n = 0;
    for h in consumers {
        n += h.join().await;
    }
    for h in producers {
        h.join().await;
    }
    assert_eq!(n, per_pair * PAIRS, "underloaded_cpu: lost messages");
    n
}

async fn underloaded_cpu(ex: &Ex, iters: usize, seconds: f64) -> Meas {
    underloaded(ex, 0.25).await;
    let mut times = Vec::with_capacity(iters);
    let mut msgs = 0u64;
    let cpu0 = cpu_time();
    for _ in 0..iters {
        let t = Instant::now();
        msgs += underloaded(ex, seconds).await;
        times.push(t.elapsed().as_nanos() as u64);
    }
    let cpu_s = cpu_time() - cpu0;
    let wall = times.iter().sum::<u64>() as f64 * 1e-9;
    let extra = (cpu_s / wall, cpu_s * 1e6 / msgs as f64, msgs as f64 / wall);
    Meas { times, cpu_s, extra: Some(extra) }
}

fn default_iters(w: &str, quick: bool) -> usize {
    let (full, q) = match w {
        "spawn_one" => (50_000, 10_000),
        "spawn_many" => (20, 5),
        "yield_now" => (50, 10),
        "ping_pong" => (500, 100),
        "fanout" => (200, 50),
        "context_switch_quiet" => (3_000, 1_000),
        "context_switch_busy" => (1_000, 200),
        "underloaded_cpu" => (1, 1),
        _ => unreachable!(),
    };
    if quick {
        q
    } else {
        full
    }
}

async fn run(ex: Ex, w: &str, iters: usize, threads: usize, seconds: f64) -> Meas {
    let ex = &ex;
    warm_pool(ex, threads).await;
    match w {
        "spawn_one" => timed!(iters, spawn_one(ex).await),
        "spawn_many" => timed!(iters, spawn_many(ex).await),
        "yield_now" => timed!(iters, yield_many(ex).await),
        "ping_pong" => timed!(iters, ping_pong(ex).await),
        "fanout" => timed!(iters, fanout(ex).await),
        "context_switch_quiet" => context_switch(ex, iters, false).await,
        "context_switch_busy" => context_switch(ex, iters, true).await,
        "underloaded_cpu" => underloaded_cpu(ex, iters, seconds).await,
        _ => unreachable!(),
    }
}

// ----------------------------------------------------------------- main

fn usage(code: i32) -> ! {
    let text = format!(
        "usage: ss-rust-peers --executor tokio|smol|age --workload NAME\n\
         \x20                    [--iters N] [--threads N] [--quick] [--seconds S]\n\
         workloads: {}\n\
         prints: workload executor threads iters median_ns min_ns max_ns cpu_s \
         cpu_per_wall cpu_us_per_msg rate (tab-separated)\n",
        WORKLOADS.join(" ")
    );
    if code == 0 {
        print!("{}", text);
    } else {
        eprint!("{}", text);
    }
    exit(code)
}

fn die(msg: &str) -> ! {
    eprintln!("ss-rust-peers: {}", msg);
    exit(2)
}

fn main() {
    let mut kind = None;
    let mut workload: Option<String> = None;
    let mut iters: Option<usize> = None;
    let mut threads: Option<usize> = None;
    let mut quick = false;
    let mut seconds: Option<f64> = None;
    let mut args = std::env::args().skip(1);
    let positive = |opt: &str, v: Option<String>| -> usize {
        match v.as_deref().map(str::parse::<usize>) {
            Some(Ok(n)) if n > 0 => n,
            _ => die(&format!("{} wants a positive number", opt)),
        }
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--executor" => {
                kind = Some(match args.next().as_deref() {
                    Some("tokio") => Kind::Tokio,
                    Some("smol") => Kind::Smol,
                    Some("age") => Kind::Age,
                    _ => die("--executor is tokio, smol or age"),
                })
            }
            "--workload" => match args.next() {
                Some(w) if WORKLOADS.contains(&w.as_str()) => workload = Some(w),
                _ => die(&format!("--workload is one of {}", WORKLOADS.join(" "))),
            },
            "--iters" => iters = Some(positive("--iters", args.next())),
            "--threads" => threads = Some(positive("--threads", args.next())),
            "--seconds" => match args.next().as_deref().map(str::parse::<f64>) {
                Some(Ok(s)) if s > 0.0 => seconds = Some(s),
                _ => die("--seconds wants a positive number"),
            },
            "--quick" => quick = true,
            "-h" | "--help" => usage(0),
            _ => {
                eprintln!("ss-rust-peers: unknown option '{}'", a);
                usage(2)
            }
        }
    }
    let (kind, workload) = match (kind, workload) {
        (Some(k), Some(w)) => (k, w),
        _ => usage(2),
    };
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let iters = iters.unwrap_or_else(|| default_iters(&workload, quick));
    let seconds = seconds.unwrap_or(if quick { 1.0 } else { 3.0 });

    let pool = Pool::new(kind, threads);
    let m = pool.block_on(run(pool.ex.clone(), &workload, iters, threads, seconds));
    pool.shutdown();

    let mut t = m.times.clone();
    t.sort_unstable();
    let median = if t.len() % 2 == 1 {
        t[t.len() / 2]
    } else {
        (t[t.len() / 2 - 1] + t[t.len() / 2]) / 2
    };
    let extra = match m.extra {
        Some((cpw, us, rate)) => format!("{:.4}\t{:.3}\t{:.0}", cpw, us, rate),
        None => "-\t-\t-".to_string(),
    };
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.4}\t{}",
        workload,
        kind.name(),
        threads,
        iters,
        median,
        t[0],
        t[t.len() - 1],
        m.cpu_s,
        extra
    );
}
