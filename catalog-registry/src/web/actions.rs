//! The forms that change something: asking for access, and an owner's
//! approval or denial. Each checks the session's CSRF token (and, when the
//! browser sends one, that the Origin is the catalog's own), acts as the
//! signed-in user through the same code as gRPC, and returns to the
//! product's page with what happened.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use mesh_contracts::catalog::RequestAccessRequest;

use super::session::same_secret;
use super::{Form, Visitor, Web, message_page};
use crate::access::Decision;

/// Longest request an access request may cover, in days.
const MAX_DAYS: i64 = 365;

/// The visitor, if the form is theirs: signed in, with the session's CSRF
/// token, and from the catalog's own origin.
async fn checked(web: &Web, headers: &HeaderMap, fields: &Form, back: &str) -> Result<Visitor, Response> {
    let visitor = web.signed_in(headers, back).await?;
    let same_origin = match headers.get(http::header::ORIGIN).and_then(|o| o.to_str().ok()) {
        None => true,
        Some(origin) => origin == web.base_url(headers),
    };
    let token_ok = fields.field("csrf").is_some_and(|token| same_secret(token, &visitor.session.csrf));
    if !token_ok || !same_origin {
        tracing::warn!(caller = %visitor.principal.subject, same_origin, "a catalog form was refused: bad CSRF token or origin");
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "The form was refused",
            "The form did not come from this catalog's page (its security token is missing or stale). Reload \
             the page and try again.",
            Some(&visitor),
        ));
    }
    Ok(visitor)
}

/// `POST /catalog/products/{id}/access`: purpose, columns, days.
pub(super) async fn request_access(
    State(web): State<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    fields: Form,
) -> Result<Response, Response> {
    let back =
        format!("/catalog/products/{}", form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
    let visitor = checked(&web, &headers, &fields, &back).await?;
    let days = fields
        .field("days")
        .and_then(|d| d.trim().parse::<i64>().ok())
        .filter(|d| (1..=MAX_DAYS).contains(d));
    let outcome = match days {
        None => Err(format!("Days: give a whole number from 1 to {MAX_DAYS}.")),
        Some(days) => {
            let end_ms = mesh_contracts::time::now_ms() + days * 86_400_000;
            let request = RequestAccessRequest {
                product: id.clone(),
                purpose: fields.field("purpose").unwrap_or_default().to_owned(),
                columns: fields.all("columns"),
                end_time: Some(mesh_contracts::time::timestamp(end_ms)),
                ..Default::default()
            };
            web.access
                .request(visitor.principal.clone(), request)
                .await
                .map_err(|e| tonic::Status::from(e).message().to_owned())
        }
    };
    let (kind, text) = match outcome {
        Ok(agreement) if agreement.state() == mesh_contracts::catalog::AgreementState::Approved => (
            "info",
            format!(
                "{} granted at once by the product's rule ({}).",
                agreement.name, agreement.decision_note
            ),
        ),
        Ok(agreement) => ("info", format!("{} is waiting for the owners' decision.", agreement.name)),
        Err(message) => ("error", format!("The request was refused: {message}")),
    };
    web.sessions.notice(&visitor.cookie, kind, text);
    Ok(Redirect::to(&back).into_response())
}

/// `POST /catalog/agreements/{id}/approve` or `/deny` (with a note).
pub(super) async fn decide(
    State(web): State<Arc<Web>>,
    Path((id, decision)): Path<(String, String)>,
    headers: HeaderMap,
    fields: Form,
) -> Result<Response, Response> {
    let product = fields.field("product").unwrap_or_default();
    let back = if crate::validate::product_id("product", product).is_ok() {
        format!("/catalog/products/{product}")
    } else {
        super::WEB_PATH.to_owned()
    };
    let visitor = checked(&web, &headers, &fields, &back).await?;
    let decision = match decision.as_str() {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        _ => {
            let page = message_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such decision.",
                Some(&visitor),
            );
            return Err(page);
        }
    };
    let name = format!("agreements/{id}");
    let note = fields.field("note").unwrap_or_default();
    let (kind, text) = match web.access.decide(visitor.principal.clone(), &name, note, decision).await {
        Ok(agreement) => {
            let verb = if decision == Decision::Approve { "approved" } else { "denied" };
            ("info", format!("{name} {verb} for {}.", agreement.principal))
        }
        Err(error) => ("error", format!("{name} was not changed: {}", tonic::Status::from(error).message())),
    };
    web.sessions.notice(&visitor.cookie, kind, text);
    Ok(Redirect::to(&back).into_response())
}
