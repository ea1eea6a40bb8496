//! A standalone S3 server (s3s + s3s-fs over a folder) for the benchmarks:
//! the fast, in-process-grade peer on which the client's own efficiency
//! shows. Listens on 127.0.0.1 only and dies with the process that started
//! it, so a benchmark script that stops takes it along.
//!
//! It answers a HEAD of a folder key 404 as S3 does, not 500 as s3s-fs
//! alone does, so `dvc pull` runs against it too.
//!
//! usage: s3s_fs_server ROOT PORT ACCESS_KEY SECRET_KEY

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::service::S3Service;

#[path = "../tests/support/folder_keys.rs"]
mod folder_keys;

/// s3s in front of s3s-fs, with folder keys answered as S3 answers them.
#[derive(Clone)]
struct Server {
    s3: S3Service,
    root: PathBuf,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl hyper::service::Service<Request<Incoming>> for Server {
    type Response = Response<s3s::Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if folder_keys::is_folder_key(&self.root, &req) {
            return Box::pin(async { Ok(folder_keys::no_such_key()) });
        }
        let s3 = self.s3.clone();
        Box::pin(async move { Ok(s3.call(req.map(s3s::Body::from)).await?) })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, root, port, access, secret] = args.as_slice() else {
        return Err("usage: s3s_fs_server ROOT PORT ACCESS_KEY SECRET_KEY".into());
    };
    // SAFETY: prctl only asks the kernel to kill us when the parent dies.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("{root}: {e:?}"))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        access.as_str(),
        secret.as_str(),
    ));
    let service = Server {
        s3: builder.build(),
        root: PathBuf::from(root),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>()?)).await?;
    eprintln!("s3s-fs serving {root} on http://{}", listener.local_addr()?);

    let http = Builder::new(TokioExecutor::new());
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        // s3s does not set it; without it every small response waits for
        // the client's delayed ACK (~40 ms), for every client alike.
        let _ = socket.set_nodelay(true);
        let conn = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
