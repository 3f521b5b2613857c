// Command go-client asks the mesh's catalog registry where the customer and
// payment products are served, then calls both domains directly with stubs
// generated from proto/ and prints the top customers by total card spend in
// one quarter and province, as CSV: rank,seq,tot_use_am.
//
// With --product it reads any product instead, one nobody generated stubs
// for (a team's product published from a product file, say): its rows are
// decoded with the descriptor set the registry holds and printed as CSV.
//
// The registry is called with the sign-in token in MESH_TOKEN (`mesh token
// print` prints one); each domain with a token for it alone, exchanged at
// the registry's /v1/token (OAuth 2.0 Token Exchange, RFC 8693);
// https:// services are verified against --ca-file (MESH_CA_FILE) or the
// system's roots. A token is never sent in plaintext but to loopback.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "woorimesh/gen/mesh/catalog/v1"
	productv1 "woorimesh/gen/mesh/product/v1"
	customerv1 "woorimesh/gen/woori/customer/v1"
	paymentv1 "woorimesh/gen/woori/payment/v1"
)

func main() {
	registry := flag.String("registry", "127.0.0.1:50050", "catalog registry: host:port (plaintext), or an http:// or https:// URL")
	flag.StringVar(&caFile, "ca-file", os.Getenv("MESH_CA_FILE"), "PEM CA that https:// services' certificates chain to")
	flag.DurationVar(&connectTimeout, "connect-timeout", 10*time.Second, "how long to wait for each connection")
	quarter := flag.String("quarter", "2024Q4", "reference quarter, e.g. 2024Q4")
	province := flag.String("province", "서울", "province of residence, e.g. 서울")
	top := flag.Int("top", 10, "how many customers to print")
	product := flag.String("product", "", "read this product instead, any product (e.g. merchant.shops), as CSV")
	filter := flag.String("filter", "", "with --product: the rows to read, in the mesh's filter language")
	limit := flag.Int64("limit", 0, "with --product: at most this many rows (0: all)")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	signIn := strings.TrimSpace(os.Getenv("MESH_TOKEN"))
	catalog := catalogv1.NewCatalogServiceClient(dial(ctx, *registry, signIn, ""))
	if *product != "" {
		readAny(ctx, catalog, *registry, signIn, *product, &productv1.QueryRequest{Filter: *filter, Limit: *limit})
		return
	}
	customerAddr := endpoint(ctx, catalog, "customer.profiles")
	paymentAddr := endpoint(ctx, catalog, "payment.card_spending")

	// The customers living in the province that quarter (customer domain).
	customers := customerv1.NewCustomerProfileServiceClient(dial(ctx, customerAddr, domainToken(*registry, "customer", signIn), "customer"))
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
	payments := paymentv1.NewCardSpendingServiceClient(dial(ctx, paymentAddr, domainToken(*registry, "payment", signIn), "payment"))
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

// caFile is the CA https:// services are verified with (empty: the system's roots).
var caFile string

// connectTimeout bounds each connection attempt (a TLS failure is retried until then).
var connectTimeout time.Duration

// bearer puts the caller's token on every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// domainToken trades the sign-in token at the registry for a token good at
// domain alone (RFC 8693 token exchange, RFC 8707 resource indicator).
func domainToken(registry, domain, signIn string) string {
	if signIn == "" {
		return ""
	}
	base := registry
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if strings.HasPrefix(base, "https://") && caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			log.Fatalf("cannot read the CA file %s: %v", caFile, err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	}
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {signIn},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"resource":           {"urn:woori-mesh:domain:" + domain},
	}
	response, err := client.PostForm(strings.TrimRight(base, "/")+"/v1/token", form)
	if err != nil {
		log.Fatalf("token exchange for %s: %v", domain, err)
	}
	defer response.Body.Close()
	var answer struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(response.Body, 1<<16)).Decode(&answer); err != nil || answer.AccessToken == "" {
		log.Fatalf("token exchange for %s refused (%s): %s %s", domain, response.Status, answer.Error, answer.Description)
	}
	return answer.AccessToken
}

// dial connects to target: host:port or http://host:port in plaintext,
// https://host:port with TLS; calls carry token when it is set. Under TLS
// the certificate must name domain when one is given (a domain's endpoint
// is whatever the catalog lists, so its certificate, not its address, says
// whose it is), or else the target's host.
func dial(ctx context.Context, target, token, domain string) *grpc.ClientConn {
	secure := strings.HasPrefix(target, "https://")
	addr := strings.TrimPrefix(strings.TrimPrefix(target, "https://"), "http://")
	opts := []grpc.DialOption{grpc.WithBlock(), grpc.FailOnNonTempDialError(true)}
	if secure {
		config := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: domain}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				log.Fatalf("cannot use the CA file %s: %v", caFile, err)
			}
			config.RootCAs = x509.NewCertPool()
			if !config.RootCAs.AppendCertsFromPEM(pem) {
				log.Fatalf("the CA file %s holds no PEM certificate", caFile)
			}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(config)))
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	if token != "" {
		if !secure && !loopback(addr) {
			log.Fatalf("refusing to send the token in plaintext to %s: use an https:// URL", addr)
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: token, secure: secure}))
	}
	dialCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := grpc.DialContext(dialCtx, addr, opts...)
	if err != nil {
		log.Fatalf("cannot reach %s: %v", addr, err)
	}
	return conn
}

// loopback tells whether addr (host:port) is on this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// endpoint finds where the registry says a product is served.
func endpoint(ctx context.Context, catalog catalogv1.CatalogServiceClient, product string) string {
	entry, err := catalog.GetProduct(ctx, &catalogv1.GetProductRequest{Name: product})
	if err != nil {
		log.Fatalf("registry: %v", err)
	}
	for _, e := range entry.Product.Endpoints {
		if e.Status == catalogv1.ServingStatus_SERVING_STATUS_SERVING {
			return e.Uri
		}
	}
	log.Fatalf("%s has no serving endpoint in the catalog", product)
	return ""
}

// readAny prints every row of product that request selects as CSV, the row
// type read from the descriptor set the registry holds for it (no stubs).
func readAny(ctx context.Context, catalog catalogv1.CatalogServiceClient, registry, signIn, product string, request *productv1.QueryRequest) {
	entry, err := catalog.GetProduct(ctx, &catalogv1.GetProductRequest{Name: product, View: catalogv1.ProductView_PRODUCT_VIEW_FULL})
	if err != nil {
		log.Fatalf("registry: %v", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(entry.DescriptorSet, &set); err != nil {
		log.Fatalf("%s: the registry's descriptor set does not decode: %v", product, err)
	}
	files, err := protodesc.FileOptions{AllowUnresolvable: true}.NewFiles(&set)
	if err != nil {
		log.Fatalf("%s: the registry's descriptor set: %v", product, err)
	}
	found, err := files.FindDescriptorByName(protoreflect.FullName(entry.Product.Service))
	service, ok := found.(protoreflect.ServiceDescriptor)
	if err != nil || !ok || service.Methods().ByName("Query") == nil {
		log.Fatalf("%s: %s is not a product service in its descriptor set", product, entry.Product.Service)
	}
	response := service.Methods().ByName("Query").Output()
	var rows protoreflect.FieldDescriptor
	for i := 0; i < response.Fields().Len(); i++ {
		if field := response.Fields().Get(i); field.IsList() && field.Message() != nil {
			rows = field
		}
	}
	if rows == nil {
		log.Fatalf("%s: its query response has no rows", product)
	}
	columns := rows.Message().Fields()
	domain := entry.Product.Domain
	conn := dial(ctx, endpoint(ctx, catalog, product), domainToken(registry, domain, signIn), domain)
	method := "/" + entry.Product.Service + "/Query"
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		log.Fatalf("%s: %v", product, err)
	}
	if err := stream.SendMsg(request); err != nil {
		log.Fatalf("%s: %v", product, err)
	}
	if err := stream.CloseSend(); err != nil {
		log.Fatalf("%s: %v", product, err)
	}
	out := csv.NewWriter(os.Stdout)
	defer out.Flush()
	header := make([]string, columns.Len())
	for i := range header {
		header[i] = string(columns.Get(i).Name())
	}
	out.Write(header)
	for {
		batch := dynamicpb.NewMessage(response)
		if err := stream.RecvMsg(batch); err == io.EOF {
			return
		} else if err != nil {
			out.Flush()
			log.Fatalf("%s: %v", product, err)
		}
		list := batch.Get(rows).List()
		for r := 0; r < list.Len(); r++ {
			row := list.Get(r).Message()
			record := make([]string, columns.Len())
			for i := range record {
				record[i] = fmt.Sprint(row.Get(columns.Get(i)).Interface())
			}
			out.Write(record)
		}
	}
}
