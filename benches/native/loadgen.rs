//! The load generator for the TCP echo and HTTP workloads: the same client for every
//! server. One thread, mio, N connections, each doing request/response ping-pong.
//!
//! ```text
//! loadgen --port 25000 --conns 10 --size 1024 --duration 5 [--http] [--server-pid PID]
//! ```
//!
//! Prints one JSON object: requests/s, MiB/s, p50/p99 latency (µs), its own CPU seconds
//! and the server's (from `/proc/PID/stat`), so that CPU per 1,000 messages can be
//! compared when the client saturates its core.

mod proc_stat;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

struct Args {
    port: u16,
    conns: usize,
    size: usize,
    duration: f64,
    http: bool,
    server_pid: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 25000,
        conns: 10,
        size: 1024,
        duration: 5.0,
        http: false,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--conns" => args.conns = value()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--size" => args.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--duration" => {
                args.duration = value()?.parse().map_err(|e| format!("--duration: {e}"))?
            }
            "--server-pid" => args.server_pid = Some(value()?),
            "--http" => args.http = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.conns == 0 || args.size == 0 || args.duration.is_nan() || args.duration <= 0.0 {
        return Err("--conns, --size and --duration must be positive".into());
    }
    Ok(args)
}

/// One connection's request in flight.
struct Conn {
    stream: TcpStream,
    request: Vec<u8>,
    written: usize,
    /// Bytes of the response read so far (echo), or the response buffer (HTTP).
    received: Vec<u8>,
    expected: Option<usize>,
    sent_at: Instant,
}

impl Conn {
    fn start(&mut self) {
        self.written = 0;
        self.received.clear();
        self.expected = None;
        self.sent_at = Instant::now();
    }

    /// Writes what it can; `Ok(true)` when the request is fully written.
    fn flush(&mut self) -> io::Result<bool> {
        while self.written < self.request.len() {
            match self.stream.write(&self.request[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads what it can; `Ok(true)` when the whole response arrived.
    fn fill(&mut self, http: bool, scratch: &mut [u8]) -> io::Result<bool> {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.received.extend_from_slice(&scratch[..n]);
                    if self.complete(http) {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(self.complete(http)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn complete(&mut self, http: bool) -> bool {
        if !http {
            return self.received.len() >= self.request.len();
        }
        if self.expected.is_none() {
            let Some(end) = find(&self.received, b"\r\n\r\n") else {
                return false;
            };
            let head = String::from_utf8_lossy(&self.received[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            self.expected = Some(end + 4 + length);
        }
        self.expected.is_some_and(|n| self.received.len() >= n)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

fn run(args: &Args) -> io::Result<String> {
    let addr: SocketAddr = ([127, 0, 0, 1], args.port).into();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let request = if args.http {
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".to_vec()
    } else {
        (0..args.size).map(|i| b'a' + (i % 26) as u8).collect()
    };
    let mut conns = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        let std_stream = std::net::TcpStream::connect(addr)?;
        std_stream.set_nodelay(true)?;
        std_stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(std_stream);
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conns.push(Conn {
            stream,
            request: request.clone(),
            written: 0,
            received: Vec::with_capacity(request.len()),
            expected: None,
            sent_at: Instant::now(),
        });
    }
    let mut scratch = vec![0u8; 256 * 1024];
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut bytes: u64 = 0;
    let cpu_self_0 = proc_stat::cpu_seconds("self").unwrap_or(0.0);
    let cpu_server_0 = args.server_pid.as_deref().and_then(proc_stat::cpu_seconds);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.duration);
    for c in &mut conns {
        c.start();
        c.flush()?;
    }
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in &events {
            let c = &mut conns[event.token().0];
            if c.written < c.request.len() && !c.flush()? {
                continue;
            }
            if c.fill(args.http, &mut scratch)? {
                latencies.push(c.sent_at.elapsed().as_micros().min(u32::MAX as u128) as u32);
                bytes += (c.request.len() + c.received.len()) as u64;
                c.start();
                c.flush()?;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_self = proc_stat::cpu_seconds("self").unwrap_or(0.0) - cpu_self_0;
    let cpu_server = match (
        cpu_server_0,
        args.server_pid.as_deref().and_then(proc_stat::cpu_seconds),
    ) {
        (Some(a), Some(b)) => format!("{:.3}", b - a),
        _ => "null".into(),
    };
    latencies.sort_unstable();
    let n = latencies.len();
    Ok(format!(
        "{{\"requests\": {n}, \"seconds\": {elapsed:.3}, \"rps\": {:.1}, \"mib_s\": {:.2}, \
         \"p50_us\": {}, \"p99_us\": {}, \"client_cpu_s\": {cpu_self:.3}, \"server_cpu_s\": {cpu_server}}}",
        n as f64 / elapsed,
        bytes as f64 / elapsed / (1024.0 * 1024.0),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    ))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    match run(&args) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}
