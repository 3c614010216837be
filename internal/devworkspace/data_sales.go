package devworkspace

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// The sales sample data: customers buying licences of the fictional
// "Kestrel" product line (the same products main.docs documents). Every
// table is a pure function of SampleDataConfig, so the same seed gives the
// same rows on every machine.

var (
	salesFamilies = []struct{ name, category string }{
		{"Kestrel Gateway", "Networking"}, {"Kestrel Vault", "Security"}, {"Kestrel Stream", "Data"},
		{"Kestrel Ledger", "Billing"}, {"Kestrel Lens", "Observability"}, {"Kestrel Sync", "Collaboration"},
		{"Kestrel Forms", "Collaboration"}, {"Kestrel Relay", "Messaging"},
	}
	salesTiers = []struct {
		name string
		base float64
	}{{"Team", 49}, {"Business", 199}, {"Enterprise", 899}, {"Support Plan", 299}, {"Extra Seats (10)", 89}}
	salesRegions    = []string{"NA", "EMEA", "APAC", "LATAM"}
	salesSegments   = []string{"Enterprise", "Mid-Market", "SMB"}
	salesFirstNames = []string{"Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kira", "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rafael", "Sofia", "Tomas", "Uma", "Viktor", "Wen", "Yusuf", "Zoe"}
	salesLastNames  = []string{"Anders", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Umar", "Varga", "Weber", "Xu", "Yilmaz", "Zhang"}
	salesCompanies  = []string{"Labs", "Systems", "Retail", "Health", "Logistics", "Media", "Energy", "Finance", "Foods", "Robotics"}
	salesStatuses   = []struct {
		name   string
		weight int
	}{{"completed", 75}, {"shipped", 10}, {"pending", 8}, {"cancelled", 5}, {"returned", 2}}
)

// Dates the sample orders span.
var (
	salesStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	salesDays  = 730
)

func sampleRNG(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

type salesProduct struct {
	id       int64
	name     string
	category string
	price    float64
}

func salesProducts(cfg SampleDataConfig) []salesProduct {
	r := sampleRNG(cfg.Seed, 2)
	out := make([]salesProduct, 0, cfg.Products)
	for i := 0; i < cfg.Products; i++ {
		f := salesFamilies[i%len(salesFamilies)]
		t := salesTiers[(i/len(salesFamilies))%len(salesTiers)]
		name := f.name + " " + t.name
		if gen := i / (len(salesFamilies) * len(salesTiers)); gen > 0 {
			name += fmt.Sprintf(" v%d", gen+1)
		}
		price := math.Round(t.base*(0.8+0.4*r.Float64())*100) / 100
		out = append(out, salesProduct{id: int64(i + 1), name: name, category: f.category, price: price})
	}
	return out
}

// sampleGenerators are the generator names sampleRows knows.
var sampleGenerators = []string{"sales.customers", "sales.products", "sales.orders"}

// checkSampleData reports what sampleRows would refuse in cfg.
func checkSampleData(cfg SampleDataConfig) error {
	if cfg.Customers <= 0 || cfg.Products <= 0 || cfg.Orders < 0 {
		return fmt.Errorf("sample_data needs customers > 0 and products > 0")
	}
	return nil
}

// sampleRows generates the rows of one sales table.
func sampleRows(cfg SampleDataConfig, generator string) ([][]any, error) {
	if err := checkSampleData(cfg); err != nil {
		return nil, err
	}
	switch generator {
	case "sales.customers":
		r := sampleRNG(cfg.Seed, 1)
		rows := make([][]any, cfg.Customers)
		for i := range rows {
			first := salesFirstNames[r.IntN(len(salesFirstNames))]
			last := salesLastNames[r.IntN(len(salesLastNames))]
			company := last + " " + salesCompanies[r.IntN(len(salesCompanies))]
			id := int64(i + 1)
			created := salesStart.AddDate(0, 0, -r.IntN(900)).Add(time.Duration(r.IntN(86400)) * time.Second)
			rows[i] = []any{
				id,
				first + " " + last + " (" + company + ")",
				fmt.Sprintf("%s.%s%d@%s.example.net", strings.ToLower(first), strings.ToLower(last), id, strings.ToLower(strings.ReplaceAll(company, " ", ""))),
				salesRegions[r.IntN(len(salesRegions))],
				salesSegments[r.IntN(len(salesSegments))],
				created.Format(time.RFC3339),
			}
		}
		return rows, nil
	case "sales.products":
		ps := salesProducts(cfg)
		rows := make([][]any, len(ps))
		for i, p := range ps {
			rows[i] = []any{p.id, p.name, p.category, p.price}
		}
		return rows, nil
	case "sales.orders":
		ps := salesProducts(cfg)
		r := sampleRNG(cfg.Seed, 3)
		rows := make([][]any, cfg.Orders)
		for i := range rows {
			// A few popular products and customers, as in real sales data.
			p := ps[min(int(float64(len(ps))*math.Pow(r.Float64(), 1.6)), len(ps)-1)]
			cust := int64(min(int(float64(cfg.Customers)*math.Pow(r.Float64(), 1.3)), cfg.Customers-1) + 1)
			qty := int64(1 + r.IntN(5))
			if r.IntN(10) == 0 {
				qty += int64(r.IntN(20))
			}
			discount := []float64{1, 1, 1, 0.95, 0.9, 0.85}[r.IntN(6)]
			w, status := r.IntN(100), ""
			for _, s := range salesStatuses {
				if w < s.weight {
					status = s.name
					break
				}
				w -= s.weight
			}
			rows[i] = []any{
				fmt.Sprintf("ORD-%06d", 100001+i),
				cust,
				p.id,
				qty,
				math.Round(p.price*discount*100) / 100,
				salesStart.AddDate(0, 0, r.IntN(salesDays)).Format("2006-01-02"),
				status,
			}
		}
		return rows, nil
	}
	return nil, fmt.Errorf("unknown generator %q (want sales.customers, sales.products or sales.orders)", generator)
}
