// Command go-client asks the mesh's catalog registry where the customer and
// payment products are served, then calls both domains directly with stubs
// generated from proto/ and prints the top customers by total card spend in
// one quarter and province, as CSV: rank,seq,tot_use_am.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "woorimesh/gen/mesh/catalog/v1"
	productv1 "woorimesh/gen/mesh/product/v1"
	customerv1 "woorimesh/gen/woori/customer/v1"
	paymentv1 "woorimesh/gen/woori/payment/v1"
)

func main() {
	registry := flag.String("registry", "127.0.0.1:50050", "catalog registry address (host:port)")
	quarter := flag.String("quarter", "2024Q4", "reference quarter, e.g. 2024Q4")
	province := flag.String("province", "서울", "province of residence, e.g. 서울")
	top := flag.Int("top", 10, "how many customers to print")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	catalog := catalogv1.NewCatalogServiceClient(dial(ctx, *registry))
	customerAddr := endpoint(ctx, catalog, "customer.profiles")
	paymentAddr := endpoint(ctx, catalog, "payment.card_spending")

	// The customers living in the province that quarter (customer domain).
	customers := customerv1.NewCustomerProfileServiceClient(dial(ctx, customerAddr))
	profiles, err := customers.Query(ctx, &productv1.QueryRequest{
		Filter:   fmt.Sprintf("bas_yh = %q AND hous_sido_nm = %q", *quarter, *province),
		ReadMask: &fieldmaskpb.FieldMask{Paths: []string{"seq"}},
	})
	if err != nil {
		log.Fatalf("customer.profiles: %v", err)
	}
	living := map[string]bool{}
	for {
		batch, err := profiles.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatalf("customer.profiles: %v", err)
		}
		for _, row := range batch.Rows {
			living[row.Seq] = true
		}
	}

	// Spending that quarter, highest first, until enough of them live there
	// (payment domain); cancelling the stream stops the domain's scan.
	payments := paymentv1.NewCardSpendingServiceClient(dial(ctx, paymentAddr))
	streamCtx, stop := context.WithCancel(ctx)
	defer stop()
	spending, err := payments.Query(streamCtx, &productv1.QueryRequest{
		Filter:   fmt.Sprintf("bas_yh = %q", *quarter),
		ReadMask: &fieldmaskpb.FieldMask{Paths: []string{"seq", "tot_use_am"}},
		OrderBy:  "tot_use_am desc, seq",
	})
	if err != nil {
		log.Fatalf("payment.card_spending: %v", err)
	}
	fmt.Println("rank,seq,tot_use_am")
	rank := 0
	for rank < *top {
		batch, err := spending.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatalf("payment.card_spending: %v", err)
		}
		for _, row := range batch.Rows {
			if living[row.Seq] && rank < *top {
				rank++
				fmt.Printf("%d,%s,%d\n", rank, row.Seq, row.TotUseAm)
			}
		}
	}
	if rank == 0 {
		fmt.Fprintf(os.Stderr, "no customers in %s in %s\n", *province, *quarter)
	}
}

// dial connects to a plaintext gRPC address (host:port).
func dial(ctx context.Context, addr string) *grpc.ClientConn {
	conn, err := grpc.DialContext(ctx, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		log.Fatalf("cannot reach %s: %v", addr, err)
	}
	return conn
}

// endpoint finds where the registry says a product is served.
func endpoint(ctx context.Context, catalog catalogv1.CatalogServiceClient, product string) string {
	entry, err := catalog.GetProduct(ctx, &catalogv1.GetProductRequest{Name: product})
	if err != nil {
		log.Fatalf("registry: %v", err)
	}
	for _, e := range entry.Product.Endpoints {
		if e.Status == catalogv1.ServingStatus_SERVING_STATUS_SERVING {
			return strings.TrimPrefix(strings.TrimPrefix(e.Uri, "http://"), "https://")
		}
	}
	log.Fatalf("%s has no serving endpoint in the catalog", product)
	return ""
}
