//! Insight reads its sources like any other consumer: under agreements of
//! its own service identity. Before a rebuild it makes sure an agreement
//! covering what it reads is in force for each source, and asks for one
//! if not (the sources' contracts carry a rule granting it at once).

use mesh_contracts::catalog::access_service_client::AccessServiceClient;
use mesh_contracts::catalog::{AgreementState, ListAgreementsRequest, RequestAccessRequest};
use mesh_grpc::MeshChannel;
use mesh_runtime::Result;

/// The identifier both sources are joined on, read raw.
const JOIN_KEY: &str = "seq";
/// What insight says it reads the data for.
const PURPOSE: &str = "insight.segment_spending: spending per quarter, life stage, province and grade, \
                       segments of fewer than the minimum customers suppressed";
/// An agreement ending sooner than this is renewed.
const RENEW_WITHIN_SECONDS: i64 = 7 * 86_400;

/// Makes sure an agreement for `columns` of `product` (the join key raw)
/// is in force for insight, asking for one if not.
pub(crate) async fn ensure(
    access: &mut AccessServiceClient<MeshChannel>,
    product: &str,
    columns: &[String],
) -> Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
        as i64;
    let request = ListAgreementsRequest { product: product.to_owned(), ..Default::default() };
    let mine = access.list_agreements(request).await?.into_inner().agreements;
    let covered = mine.iter().any(|a| {
        a.state() == AgreementState::Approved
            && a.end_time.as_ref().is_some_and(|end| end.seconds > now + RENEW_WITHIN_SECONDS)
            && columns.iter().all(|c| a.columns.contains(c))
            && a.raw_columns.iter().any(|c| c == JOIN_KEY)
            && a.row_scope.is_empty()
    });
    if covered {
        return Ok(());
    }
    let request = RequestAccessRequest {
        product: product.to_owned(),
        purpose: PURPOSE.to_owned(),
        columns: columns.to_vec(),
        raw_columns: vec![JOIN_KEY.to_owned()],
        ..Default::default()
    };
    let agreement = access.request_access(request).await?.into_inner().agreement.unwrap_or_default();
    tracing::info!(product, agreement = %agreement.name, state = ?agreement.state(), "asked for access to a source");
    Ok(())
}
