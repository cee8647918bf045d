//! A keep-alive HTTP/1.1 GET and nothing else, for the `history` scenario's closed loop: there
//! the load generator shares the server's two cores, and reqwest's own cost per page (35–40
//! µs) capped what the server could be seen to do. This one writes a request and reads a
//! `Content-Length` body back into a reused buffer.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::Fallible;

pub struct KeepAlive {
    addr: SocketAddr,
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl KeepAlive {
    pub async fn connect(addr: SocketAddr) -> Fallible<KeepAlive> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(KeepAlive {
            addr,
            stream: BufReader::with_capacity(64 * 1024, stream),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// GETs `path` with a bearer token; the body's length if the answer is 200, else an error
    /// that carries the status and body.
    pub async fn get(&mut self, path: &str, token: &str) -> Fallible<usize> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
            self.addr
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;

        let status = self.read_line().await?;
        let status: u16 = status
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP status line: {status:?}"))?;
        let mut length = None;
        loop {
            let header = self.read_line().await?;
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((&header, ""));
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(format!(
                    "unexpected `{header}` (this client reads lengths only)"
                ));
            }
        }
        let length = length.ok_or("an answer without Content-Length")?;
        self.body.resize(length, 0);
        self.stream
            .read_exact(&mut self.body)
            .await
            .map_err(|e| format!("body: {e}"))?;
        if status != 200 {
            return Err(format!("{status} {}", String::from_utf8_lossy(&self.body)));
        }
        Ok(length)
    }

    /// One header line without its CRLF.
    async fn read_line(&mut self) -> Fallible<String> {
        self.line.clear();
        let read = self
            .stream
            .read_line(&mut self.line)
            .await
            .map_err(|e| format!("answer: {e}"))?;
        if read == 0 {
            return Err("the server closed the connection".into());
        }
        Ok(self.line.trim_end_matches(['\r', '\n']).to_owned())
    }
}
