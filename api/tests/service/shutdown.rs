//! Graceful shutdown: on SIGTERM the listener closes, and a request in
//! flight still gets its answer before the service exits 0.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use devicegate_test_support::sqlite;

use crate::harness::Service;

#[tokio::test]
async fn requests_in_flight_finish_after_sigterm() {
    let db = sqlite();
    let service = Service::start(&db.url, &[]).await;
    let body = br#"{"deviceAuthParameters":{"accessKey":"a","secretKey":"b"}}"#;
    let mut tcp = TcpStream::connect(service.address()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        tcp,
        "POST /authenticate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    // `100 Continue` comes once the handler reads the body: in flight.
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    reader.read_line(&mut line).unwrap();

    service.terminate();
    // The listener closes first: wait until new connections are refused.
    let started = Instant::now();
    while TcpStream::connect(service.address()).is_ok() {
        assert!(started.elapsed() < Duration::from_secs(30), "the listener stays open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tcp.write_all(body).unwrap();
    let mut answer = String::new();
    reader.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#"{"errors":{"detail":"#), "{answer}");
    service.wait_exit();
}
