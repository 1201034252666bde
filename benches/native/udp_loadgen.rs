//! The load generator for the UDP echo workload: one thread, mio, N sockets each
//! connected to the server, each sending a datagram and waiting for its echo (a
//! datagram lost is sent again after 100 ms).
//!
//! ```text
//! udp-loadgen --port 25000 --socks 10 --size 64 --duration 3 [--server-pid PID]
//! ```
//!
//! Prints one JSON object: messages/s, its own CPU seconds and the server's (from
//! `/proc/PID/stat`).

mod proc_stat;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

/// A datagram not answered within this long is sent again.
const RESEND_AFTER: Duration = Duration::from_millis(100);

struct Args {
    port: u16,
    socks: usize,
    size: usize,
    duration: f64,
    server_pid: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 25000,
        socks: 10,
        size: 64,
        duration: 3.0,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--socks" => args.socks = value()?.parse().map_err(|e| format!("--socks: {e}"))?,
            "--size" => args.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--duration" => {
                args.duration = value()?.parse().map_err(|e| format!("--duration: {e}"))?
            }
            "--server-pid" => args.server_pid = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let size_ok = (1..=65_000).contains(&args.size);
    if args.socks == 0 || !size_ok || args.duration.is_nan() || args.duration <= 0.0 {
        return Err("--socks, --size (1-65000) and --duration must be positive".into());
    }
    Ok(args)
}

fn run(args: &Args) -> io::Result<String> {
    let server: SocketAddr = ([127, 0, 0, 1], args.port).into();
    let mut poll = Poll::new()?;
    let mut socks = Vec::with_capacity(args.socks);
    for i in 0..args.socks {
        let mut sock = UdpSocket::bind(([127, 0, 0, 1], 0).into())?;
        sock.connect(server)?;
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE)?;
        socks.push(sock);
    }
    let payload = vec![b'x'; args.size];
    let mut scratch = vec![0u8; 65_536];
    let mut sent_at = vec![Instant::now(); args.socks];
    for sock in &socks {
        sock.send(&payload)?;
    }
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.duration);
    let cpu_self_0 = proc_stat::cpu_seconds("self");
    let cpu_server_0 = args.server_pid.as_deref().and_then(proc_stat::cpu_seconds);
    let mut done: u64 = 0;
    let mut resent: u64 = 0;
    while Instant::now() < end {
        poll.poll(&mut events, Some(RESEND_AFTER / 4))?;
        for event in &events {
            let i = event.token().0;
            loop {
                match socks[i].recv(&mut scratch) {
                    Ok(_) => {
                        done += 1;
                        socks[i].send(&payload)?;
                        sent_at[i] = Instant::now();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        let now = Instant::now();
        for (sock, at) in socks.iter().zip(sent_at.iter_mut()) {
            if now - *at > RESEND_AFTER {
                sock.send(&payload)?;
                *at = now;
                resent += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = |before: Option<f64>, after: Option<f64>| match (before, after) {
        (Some(b), Some(a)) => format!("{:.4}", a - b),
        _ => "null".into(),
    };
    Ok(format!(
        "{{\"rps\": {:.1}, \"resent\": {resent}, \"client_cpu\": {}, \"server_cpu\": {}, \"seconds\": {elapsed:.3}}}",
        done as f64 / elapsed,
        cpu(cpu_self_0, proc_stat::cpu_seconds("self")),
        cpu(
            cpu_server_0,
            args.server_pid.as_deref().and_then(proc_stat::cpu_seconds)
        ),
    ))
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("udp-loadgen: {e}");
            std::process::exit(2);
        }
    };
    match run(&args) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("udp-loadgen: {e}");
            std::process::exit(1);
        }
    }
}
