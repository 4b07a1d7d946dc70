//! The OpenAPI document: schemas derived from the Rust types, operations generated from the
//! endpoint table (paths, methods, roles, bodies), so the document cannot drift from the
//! router.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
use utoipa::OpenApi;

use super::handlers::*;
use super::{endpoints, Access, Body};
use crate::audit::AuditEntry;
use crate::availability::{Arrival, Availability, Incoming, OwnStock, Recorded, Source, StockLine};
use crate::credit::{Ageing, CreditAccount, LimitRequest};
use crate::jobs::JobView;
use crate::pipeline::{LineKind, LineQty, LineView, Received};
use crate::proposals::{ForecastPoint, MonthQty, ProjectedPoint, ProposalDetail, ProposalView};
use crate::service::Page;

#[derive(OpenApi)]
#[openapi(
    info(title = "spareplan", description = "Spare-parts planning service: planners, stations, finance."),
    components(schemas(
        super::Problem, super::error::ProblemRow,
        ForecastRequest, PlanRequest, JobView, Page<JobView>,
        ProposalView, Page<ProposalView>, ProposalDetail, MonthQty, ForecastPoint, ProjectedPoint,
        EditRequest, VersionRequest, DecisionRequest, ReleaseRequest, ReleaseItem,
        Availability, OwnStock, Incoming, Source, IssueRequest, ReceiptRequest, Recorded, StockLine,
        Page<StockLine>, Arrival,
        LineReceiptRequest, Received, LineView, Page<LineView>, LineQty, LineKind,
        CreditAccount, Ageing, PaymentRequest, LimitChangeRequest, LimitRequest,
        AuditEntry, Page<AuditEntry>, ImportResult,
    ))
)]
struct Schemas;

fn method(m: &axum::http::Method) -> HttpMethod {
    match *m {
        axum::http::Method::POST => HttpMethod::Post,
        axum::http::Method::PUT => HttpMethod::Put,
        axum::http::Method::DELETE => HttpMethod::Delete,
        axum::http::Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

fn content(body: Body) -> Option<(&'static str, utoipa::openapi::Content)> {
    match body {
        Body::None => None,
        Body::Json("Object") => Some(("application/json", ContentBuilder::new().build())),
        Body::Json(name) => Some((
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(name)))
                .build(),
        )),
        Body::Csv => Some(("text/csv", ContentBuilder::new().build())),
        Body::Text => Some(("text/plain", ContentBuilder::new().build())),
    }
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Schemas::openapi();
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("API token")
                    .build(),
            ),
        );
    }
    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    for e in endpoints() {
        let mut op = OperationBuilder::new()
            .tag(e.tag)
            .summary(Some(e.summary))
            .operation_id(Some(format!(
                "{}_{}",
                e.method.as_str().to_lowercase(),
                e.path
                    .trim_start_matches('/')
                    .replace(['/', '{', '}', '-', '.'], "_")
            )));
        for segment in e.path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .build(),
                );
            }
        }
        if let Some((ct, c)) = content(e.request) {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(ct, c)
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        let mut ok = ResponseBuilder::new().description("success");
        if let Some((ct, c)) = content(e.response) {
            ok = ok.content(ct, c);
        }
        op = op.response(e.status.to_string(), ok.build());
        match e.access {
            Access::Public => {}
            Access::Roles(roles) => {
                let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                op = op
                    .description(Some(format!("Roles: {}.", names.join(", "))))
                    .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                    .response(
                        "401",
                        ResponseBuilder::new()
                            .description("missing or unknown token")
                            .content("application/problem+json", problem())
                            .build(),
                    )
                    .response(
                        "403",
                        ResponseBuilder::new()
                            .description("role not admitted")
                            .content("application/problem+json", problem())
                            .build(),
                    );
            }
        }
        if e.request != Body::None {
            op = op.response(
                "422",
                ResponseBuilder::new()
                    .description("a field is not acceptable (the problem names it)")
                    .content("application/problem+json", problem())
                    .build(),
            );
        }
        doc.paths
            .add_path_operation(e.path, vec![method(&e.method)], op.build());
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_documented_and_every_schema_it_names_exists() {
        let doc = document();
        let schemas = &doc.components.as_ref().expect("components").schemas;
        for e in endpoints() {
            let item = doc
                .paths
                .paths
                .get(e.path)
                .unwrap_or_else(|| panic!("{} missing", e.path));
            let json = serde_json::to_value(item).expect("serialises");
            assert!(
                json.get(e.method.as_str().to_lowercase()).is_some(),
                "{} {} missing",
                e.method,
                e.path
            );
            for body in [e.request, e.response] {
                if let Body::Json(name) = body {
                    assert!(
                        name == "Object" || schemas.contains_key(name),
                        "schema {name} missing"
                    );
                }
            }
        }
    }
}
