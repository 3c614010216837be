package devworkspace

import "net/http"

func (ws *Workspace) registerWarehouseRoutes() {
	ws.routeConfig("GET /api/2.0/sql/warehouses", ws.handleListWarehouses)
	ws.routeConfig("GET /api/2.0/sql/warehouses/{id}", ws.handleGetWarehouse)
}

func (ws *Workspace) warehouseExists(id string) bool {
	for _, w := range ws.cfg.Warehouses {
		if w.ID == id {
			return true
		}
	}
	return false
}

// warehouseInfo is GetWarehouseResponse on the wire; every warehouse is a
// running serverless PRO warehouse over the embedded database.
type warehouseInfo struct {
	ID                      string `json:"id"`
	Name                    string `json:"name"`
	State                   string `json:"state"`
	ClusterSize             string `json:"cluster_size"`
	WarehouseType           string `json:"warehouse_type"`
	EnableServerlessCompute bool   `json:"enable_serverless_compute"`
	AutoStopMins            int    `json:"auto_stop_mins"`
	MinNumClusters          int    `json:"min_num_clusters"`
	MaxNumClusters          int    `json:"max_num_clusters"`
	NumClusters             int    `json:"num_clusters"`
	CreatorName             string `json:"creator_name"`
	JdbcURL                 string `json:"jdbc_url"`
	Health                  any    `json:"health"`
}

func (ws *Workspace) warehouseInfo(r *http.Request, c WarehouseConfig) warehouseInfo {
	size := c.ClusterSize
	if size == "" {
		size = "2X-Small"
	}
	return warehouseInfo{
		ID: c.ID, Name: c.Name, State: "RUNNING", ClusterSize: size, WarehouseType: "PRO",
		EnableServerlessCompute: true, AutoStopMins: 10, MinNumClusters: 1, MaxNumClusters: 1, NumClusters: 1,
		CreatorName: "devworkspace",
		JdbcURL:     "jdbc:databricks://" + r.Host + ":443/default;transportMode=http;ssl=1;httpPath=/sql/1.0/warehouses/" + c.ID,
		Health:      map[string]string{"status": "HEALTHY"},
	}
}

// handleListWarehouses lists the warehouses the caller may see (any level).
func (ws *Workspace) handleListWarehouses(w http.ResponseWriter, r *http.Request) {
	p := callerFrom(r.Context()).Principal
	out := []warehouseInfo{}
	for _, c := range ws.cfg.Warehouses {
		if ws.permissionLevel(p, "warehouses", c.ID) != "" {
			out = append(out, ws.warehouseInfo(r, c))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"warehouses": out})
}

func (ws *Workspace) handleGetWarehouse(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, c := range ws.cfg.Warehouses {
		if c.ID == id {
			if !ws.requirePermission(w, r, "warehouses", id, "CAN_VIEW") {
				return
			}
			writeJSON(w, http.StatusOK, ws.warehouseInfo(r, c))
			return
		}
	}
	writeError(w, http.StatusNotFound, codeNotFound, "warehouse %s does not exist", id)
}
