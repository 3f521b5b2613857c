//! The registry's page tokens: as sent by a client, and as signed payloads.
#![no_main]

use std::sync::OnceLock;

use catalog_registry::page_token::PageTokens;

fn tokens() -> &'static PageTokens {
    static TOKENS: OnceLock<PageTokens> = OnceLock::new();
    TOKENS.get_or_init(|| PageTokens::new(b"fuzzing secret".to_vec()))
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let _ = tokens().check(&String::from_utf8_lossy(input), &["products", "shop"]);
    let signed = mesh_grpc::SealedTokens::new(b"fuzzing secret".to_vec()).seal(input);
    let _ = tokens().check(&signed, &["products", "shop"]);
});
