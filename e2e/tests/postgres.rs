//! The throwaway PostgreSQL server the tests run against
//! (scripts/postgres.sh, from Debian's package): it starts in a temporary
//! folder under a non-root user, listens on loopback with password
//! authentication, takes rows by COPY in one transaction, and with
//! `COLLATE "C"` orders Korean text by bytes, as SQLite does, so a resume
//! token can mean the same thing on both backends.

use futures_util::SinkExt;
use mesh_postgres::testing::TestServer as Server;

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test]
async fn a_throwaway_server_takes_copies_and_orders_korean_text_by_bytes() {
    let server = Server::start();
    assert!(server.url().starts_with("postgres://mesh:"), "{}", server.url());
    let wrong = server.url().replacen("postgres://mesh:", "postgres://mesh:wrong", 1);
    assert!(connect(&wrong).await.is_err(), "a wrong password is refused");

    let mut client = connect(server.url()).await.unwrap();
    client
        .batch_execute("CREATE TABLE places (name TEXT COLLATE \"C\" NOT NULL, n BIGINT NOT NULL)")
        .await
        .unwrap();
    let names = ["서울", "부산", "Seoul", "경남", "seoul", "제주", "강원"];
    let transaction = client.transaction().await.unwrap();
    let sink = transaction.copy_in("COPY places (name, n) FROM STDIN").await.unwrap();
    let text: String = names.iter().enumerate().map(|(i, name)| format!("{name}\t{i}\n")).collect();
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from(text)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), names.len() as u64);
    transaction.commit().await.unwrap();

    let rows = client.query("SELECT name FROM places ORDER BY name", &[]).await.unwrap();
    let ordered: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let mut by_bytes: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    by_bytes.sort();
    assert_eq!(ordered, by_bytes, "byte order, as SQLite's default");
}
