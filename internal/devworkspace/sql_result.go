package devworkspace

// Statement parameters and typed query results.

import (
	"fmt"
	"strconv"
	"time"
)

// StatementParam is a named statement parameter as the statement API sends
// it: Value nil means NULL; Type defaults to STRING.
type StatementParam struct {
	Name  string  `json:"name"`
	Value *string `json:"value,omitempty"`
	Type  string  `json:"type,omitempty"`
}

// Column is one result column.
type Column struct {
	Name     string
	TypeName string // Databricks type_name: STRING, LONG, INT, DOUBLE, DATE, TIMESTAMP, BOOLEAN
}

// ResultSet is a query result with typed cells (int64, float64, string,
// bool, time.Time, []byte or nil).
type ResultSet struct {
	Columns []Column
	Rows    [][]any
}

// DataArray renders the rows as the statement API's JSON_ARRAY: every cell
// a string, nil for NULL.
func (rs *ResultSet) DataArray() [][]*string {
	out := make([][]*string, len(rs.Rows))
	for i, row := range rs.Rows {
		cells := make([]*string, len(row))
		for j, v := range row {
			cells[j] = formatCell(v, rs.Columns[j].TypeName)
		}
		out[i] = cells
	}
	return out
}

func formatCell(v any, typ string) *string {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		s = x
	case []byte:
		s = string(x)
	case int64:
		if typ == "BOOLEAN" {
			s = strconv.FormatBool(x != 0)
		} else {
			s = strconv.FormatInt(x, 10)
		}
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	case time.Time:
		if typ == "DATE" {
			s = x.UTC().Format("2006-01-02")
		} else {
			s = x.UTC().Format("2006-01-02T15:04:05.000Z")
		}
	default:
		s = fmt.Sprint(x)
	}
	return &s
}
