//! The HTTP surface: routes, request guards, the JSON error mapping, embedded assets, and the
//! server loop that enforces connection limits.

mod account;
mod admin;
mod assets;
mod backups;
mod chat;
pub mod error;
mod files;
pub mod filters;
mod lan;
mod monitoring;
mod rooms;
mod search;
mod server;
pub(crate) mod ws;

use std::sync::Arc;

use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Method};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::app::App;
use crate::config::VERSION;
use error::{ApiError, respond};
use filters::{admin, client_addr, json_body, query, request_origin, session, signed_in, with_app};
pub use server::{Surface, serve};

/// No inline script or style, nothing from elsewhere: a message can never run code.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

/// Every route, with errors mapped and security headers on every response.
pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "ok", "version": VERSION})).into_response());

    let api = warp::path("api")
        .and(
            account_routes(app.clone())
                .or(admin_routes(app.clone()))
                .unify(),
        )
        .or(warp::path("api").and(chat_routes(app.clone())))
        .unify()
        .map(|response: Response| with_header(response, "cache-control", "no-store"));

    let ws = warp::path!("ws").and(ws::upgrade(app.clone()));

    let metrics = metrics_route(app.clone());
    let trust = trust_routes(app.clone());

    let setup_page = warp::path!("setup")
        .and(warp::get())
        .and(with_app(app))
        .map(|app: Arc<App>| assets::setup_page(app.auth.needs_setup()));

    // Any path may be a file, so a non-GET here says "not found", never "method not
    // allowed", which is kept for routes that exist with another method.
    let static_files = warp::method()
        .and(warp::path::tail())
        .and(warp::header::optional::<String>("if-none-match"))
        .and_then(
            |method: Method, tail: warp::path::Tail, etag: Option<String>| async move {
                // Rejecting (not answering 404) lets a more specific rejection from an
                // earlier route, such as 401 or bad_origin, be the one reported.
                (method == Method::GET)
                    .then(|| assets::serve(tail.as_str(), etag.as_deref()))
                    .flatten()
                    .ok_or_else(warp::reject::not_found)
            },
        );

    health
        .or(api)
        .unify()
        .or(ws)
        .unify()
        .or(metrics)
        .unify()
        .or(trust)
        .unify()
        .or(setup_page)
        .unify()
        .or(static_files)
        .unify()
        .recover(error::recover)
        .unify()
        .map(security_headers)
        .boxed()
}

/// `GET /metrics`: only for the token or loopback that `--metrics-*` configured; otherwise
/// it does not exist (404), whatever the method.
fn metrics_route(app: Arc<App>) -> BoxedFilter<(Response,)> {
    use monitoring::MetricsDecision;
    warp::path!("metrics")
        .and(with_app(app))
        .and(client_addr())
        .and(warp::header::optional::<String>("authorization"))
        .and_then(
            |app: Arc<App>, from, authorization: Option<String>| async move {
                let access = &app.config.metrics;
                match monitoring::metrics_decision(access, from, authorization.as_deref()) {
                    MetricsDecision::Serve => Ok(app),
                    MetricsDecision::NeedToken => Err(warp::reject::custom(ApiError::MetricsToken)),
                    MetricsDecision::Hidden => Err(warp::reject::not_found()),
                }
            },
        )
        .and(warp::get())
        .then(monitoring::metrics)
        .map(respond)
        .boxed()
}

/// What plain HTTP gets when TLS is on: the trust page (reachable before the browser trusts
/// the server) and a redirect to HTTPS for everything else.
pub fn plain_routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    lan::plain_routes(trust_routes(app))
        .recover(error::recover)
        .unify()
        .map(security_headers)
        .boxed()
}

/// `/trust` and `/trust/ca.pem`, only when the server has its own CA (`--tls auto`).
fn trust_routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let ca = with_app(app).and_then(|app: Arc<App>| async move {
        app.trust.clone().ok_or_else(warp::reject::not_found)
    });
    let page = warp::path!("trust")
        .and(warp::get().or(warp::head()).unify())
        .and(ca.clone())
        .map(|ca| lan::trust_page(&ca));
    let file = warp::path!("trust" / "ca.pem")
        .and(warp::get())
        .and(ca)
        .map(|ca| lan::ca_file(&ca));
    page.or(file).unify().boxed()
}

fn account_routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let setup = warp::path!("setup")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(request_origin())
        .and(json_body())
        .then(account::setup);
    let login = warp::path!("login")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(request_origin())
        .and(client_addr())
        .and(json_body())
        .then(account::login);
    let logout = warp::path!("logout")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(signed_in(app.clone()))
        .then(account::logout);
    let me = warp::path!("me")
        .and(warp::get())
        .and(signed_in(app.clone()))
        .then(account::me);
    let password = warp::path!("me" / "password")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(signed_in(app.clone()))
        .and(client_addr())
        .and(json_body())
        .then(account::change_password);
    let directory = warp::path!("users")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app))
        .then(account::directory);
    setup
        .or(login)
        .unify()
        .or(logout)
        .unify()
        .or(me)
        .unify()
        .or(password)
        .unify()
        .or(directory)
        .unify()
        .map(respond)
        .boxed()
}

fn admin_routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let list = warp::path!("admin" / "users")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(admin(app.clone()))
        .then(admin::list);
    let create = warp::path!("admin" / "users")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(admin(app.clone()))
        .and(json_body())
        .then(admin::create);
    let update = warp::path!("admin" / "users" / u64)
        .and(warp::patch())
        .and(with_app(app.clone()))
        .and(admin(app.clone()))
        .and(json_body())
        .then(|id, app, admin, body| admin::update(app, id, admin, body));
    let reset = warp::path!("admin" / "users" / u64 / "reset-password")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(admin(app.clone()))
        .then(|id, app, admin| admin::reset_password(app, id, admin));
    let status = warp::path!("admin" / "status")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(admin(app.clone()))
        .and(query())
        .then(monitoring::admin_status);
    let join = warp::path!("admin" / "join")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(admin(app.clone()))
        .then(lan::join);
    list.or(create)
        .unify()
        .or(join)
        .unify()
        .or(update)
        .unify()
        .or(reset)
        .unify()
        .or(status)
        .unify()
        .or(backup_routes(app))
        .unify()
        .map(respond)
        .boxed()
}

fn backup_routes(app: Arc<App>) -> BoxedFilter<(Result<Response, ApiError>,)> {
    let list = warp::path!("admin" / "backups")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(admin(app.clone()))
        .then(backups::list);
    let latest = warp::path!("admin" / "backups" / "latest")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(admin(app))
        .then(backups::latest);
    list.or(latest).unify().boxed()
}

fn chat_routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let list = warp::path!("conversations")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(chat::list);
    let changes = warp::path!("conversations" / String / "changes")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(query())
        .then(|id, app, who, params| chat::changes(app, id, who, params));
    let history = warp::path!("conversations" / String / "messages")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(query())
        .then(|id, app, who, params| chat::history(app, id, who, params));
    let search = warp::path!("search")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(query())
        .then(search::search);
    list.or(history)
        .unify()
        .or(search)
        .unify()
        .or(changes)
        .unify()
        .or(room_routes(app.clone()))
        .unify()
        .or(people_routes(app.clone()))
        .unify()
        .or(file_routes(app))
        .unify()
        .map(respond)
        .boxed()
}

fn file_routes(app: Arc<App>) -> BoxedFilter<(Result<Response, ApiError>,)> {
    let upload = warp::path!("conversations" / String / "uploads")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(query())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(|id, app, who, query, length, body| files::upload(app, id, who, query, length, body));
    let download = warp::path!("conversations" / String / "files" / String)
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(warp::header::optional::<String>("if-none-match"))
        .then(|id, file, app, who, etag| files::download(app, id, file, who, etag));
    let thumbnail = warp::path!("conversations" / String / "files" / String / "thumb")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(warp::header::optional::<String>("if-none-match"))
        .then(|id, file, app, who, etag| files::thumbnail(app, id, file, who, etag));
    let set_avatar = warp::path!("me" / "avatar")
        .and(warp::put())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(files::set_avatar);
    let clear_avatar = warp::path!("me" / "avatar")
        .and(warp::delete())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(files::clear_avatar);
    let avatar = warp::path!("users" / u64 / "avatar")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app))
        .and(warp::header::optional::<String>("if-none-match"))
        .then(|user, app, who, etag| files::avatar(app, user, who, etag));
    upload
        .or(download)
        .unify()
        .or(thumbnail)
        .unify()
        .or(set_avatar)
        .unify()
        .or(clear_avatar)
        .unify()
        .or(avatar)
        .unify()
        .boxed()
}

fn room_routes(app: Arc<App>) -> BoxedFilter<(Result<Response, ApiError>,)> {
    let create = warp::path!("rooms")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(json_body())
        .then(rooms::create);
    let browse = warp::path!("rooms")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(query())
        .then(rooms::browse);
    let get = warp::path!("rooms" / String)
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|id, app, who| rooms::get(app, id, who));
    let update = warp::path!("rooms" / String)
        .and(warp::patch())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(json_body())
        .then(|id, app, who, body| rooms::update(app, id, who, body));
    let join = warp::path!("rooms" / String / "join")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|id, app, who| rooms::join(app, id, who));
    let leave = warp::path!("rooms" / String / "leave")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|id, app, who| rooms::leave(app, id, who));
    let members = warp::path!("rooms" / String / "members")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|id, app, who| rooms::members(app, id, who));
    let add = warp::path!("rooms" / String / "members")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(json_body())
        .then(|id, app, who, body| rooms::add_member(app, id, who, body));
    let remove = warp::path!("rooms" / String / "members" / u64)
        .and(warp::delete())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|id, user, app, who| rooms::remove_member(app, id, user, who));
    let notify = warp::path!("conversations" / String / "notify")
        .and(warp::put())
        .and(with_app(app.clone()))
        .and(session(app))
        .and(json_body())
        .then(|id, app, who, body| rooms::set_notify(app, id, who, body));
    create
        .or(browse)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(join)
        .unify()
        .or(leave)
        .unify()
        .or(members)
        .unify()
        .or(add)
        .unify()
        .or(remove)
        .unify()
        .or(notify)
        .unify()
        .boxed()
}

fn people_routes(app: Arc<App>) -> BoxedFilter<(Result<Response, ApiError>,)> {
    let mentions = warp::path!("mentions")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(query())
        .then(rooms::mentions);
    let settings = warp::path!("me" / "settings")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(rooms::settings);
    let change_settings = warp::path!("me" / "settings")
        .and(warp::put())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .and(json_body())
        .then(rooms::change_settings);
    let requests = warp::path!("requests")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(rooms::requests);
    let accept = warp::path!("requests" / u64 / "accept")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|from, app, who| rooms::accept(app, from, who));
    let decline = warp::path!("requests" / u64 / "decline")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|from, app, who| rooms::decline(app, from, who));
    let blocks = warp::path!("blocks")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(rooms::blocks);
    let block = warp::path!("blocks" / u64)
        .and(warp::put())
        .and(with_app(app.clone()))
        .and(session(app.clone()))
        .then(|target, app, who| rooms::block(app, target, who));
    let unblock = warp::path!("blocks" / u64)
        .and(warp::delete())
        .and(with_app(app.clone()))
        .and(session(app))
        .then(|target, app, who| rooms::unblock(app, target, who));
    mentions
        .or(settings)
        .unify()
        .or(change_settings)
        .unify()
        .or(requests)
        .unify()
        .or(accept)
        .unify()
        .or(decline)
        .unify()
        .or(blocks)
        .unify()
        .or(block)
        .unify()
        .or(unblock)
        .unify()
        .boxed()
}

fn security_headers(response: Response) -> Response {
    let response = with_header(response, "content-security-policy", CONTENT_SECURITY_POLICY);
    let response = with_header(response, "x-content-type-options", "nosniff");
    let response = with_header(response, "referrer-policy", "no-referrer");
    with_header(response, "x-frame-options", "DENY")
}

fn with_header(mut response: Response, name: &'static str, value: &'static str) -> Response {
    response
        .headers_mut()
        .entry(name)
        .or_insert(HeaderValue::from_static(value));
    response
}
