package engine

import "encoding/json"

// UnmarshalJSON reads a stored deployment. Records written before Kind
// existed name the strategy with two booleans, blueGreen and rollback
// (a blue/green rollback); they map to the kinds here, and the record is
// written back in the new shape at its next commit.
func (d *Deployment) UnmarshalJSON(b []byte) error {
	type plain Deployment // no methods: no recursion
	var v struct {
		plain
		LegacyBlueGreen bool `json:"blueGreen"`
		LegacyRollback  bool `json:"rollback"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = Deployment(v.plain)
	if d.Kind == "" {
		switch {
		case v.LegacyBlueGreen && v.LegacyRollback:
			d.Kind = KindReroute
		case v.LegacyBlueGreen:
			d.Kind = KindBlueGreen
		default:
			d.Kind = KindInPlace
		}
	}
	return nil
}
