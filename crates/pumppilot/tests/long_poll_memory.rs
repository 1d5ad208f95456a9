//! What a waiting long-poll holds on the server (issue 15: at most 10 KB a device), counted by
//! this test binary's allocator: 100 long-polls held on the devices' own path against the same
//! long-polls on connections hyper serves. Fails if a parked device connection grows back
//! towards hyper's buffers.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
    time::Duration,
};

use common::{LEASE_MS, TestApp, spawn_app};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const HELD: usize = 100;

/// Bytes live on the heap per long-poll once `HELD` of them wait, each on its own connection
/// (`through_hyper`: connections that began with another request, so hyper serves them), the
/// client's sockets included (about 300 bytes each).
async fn held_bytes_each(app: &TestApp, key: &str, seq: u64, through_hyper: bool) -> isize {
    let wait = i64::from(LEASE_MS / 3);
    let request = format!(
        "GET /api/esp32/poll?loadShedding=0&ready=1&relay=0&wait=30000&seq={seq} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\r\n"
    );
    let mut held = Vec::with_capacity(HELD);
    let before = LIVE.load(Ordering::Relaxed);
    for _ in 0..HELD {
        let mut stream = TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
        if through_hyper {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
            let mut answer = [0u8; 512];
            let n = stream.read(&mut answer).await.unwrap();
            assert!(answer[..n].ends_with(b"\r\n\r\nok"), "{:?}", String::from_utf8_lossy(&answer[..n]));
        }
        stream.write_all(request.as_bytes()).await.unwrap();
        held.push(stream);
    }
    common::until("every long-poll held", || app.waits_for(wait) == HELD).await;
    // Let every connection's task come to rest (hyper reads on after a request is handed out).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let each = (LIVE.load(Ordering::Relaxed) - before) / HELD as isize;
    drop(held);
    common::until("every long-poll dropped with its connection", || app.waits_for(wait) == 0).await;
    each
}

#[tokio::test]
async fn a_waiting_long_poll_holds_no_buffer() {
    let app = spawn_app().await;
    let tenant = app.tenant("parked", 1, 60).await;
    let key = tenant.device.client.token.clone().unwrap();
    tenant.device.poll(false, true).await;
    let seq = tenant.device.poll(false, true).await["seq"].as_u64().unwrap();
    // Once on each path first: what is made once (a route's figures, the tenant's channel) is
    // not counted below.
    held_bytes_each(&app, &key, seq, false).await;
    held_bytes_each(&app, &key, seq, true).await;

    let device = held_bytes_each(&app, &key, seq, false).await;
    let hyper = held_bytes_each(&app, &key, seq, true).await;
    println!("a waiting long-poll: {device} bytes on the device path, {hyper} through hyper");
    // hyper holds two 8 KiB read blocks and an 8 KiB write buffer per connection.
    assert!(hyper > 16 * 1024, "through hyper: {hyper} bytes (the reference this test compares to)");
    assert!(device <= 6 * 1024, "a waiting long-poll on the device path holds {device} bytes");
}
