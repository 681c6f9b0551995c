package ui_test

import (
	"encoding/json"
	"fmt"
	"strings"
)

// snapshot is a full snapshot of a page with a heading (text node 7) and a
// paragraph (text node 9).
func snapshot(ts int64, heading, para string) []json.RawMessage {
	meta := fmt.Sprintf(`{"type":4,"data":{"href":"https://shop.example/checkout","width":1200,"height":760},"timestamp":%d}`, ts)
	node := map[string]any{
		"type": 0, "id": 1, "childNodes": []any{
			map[string]any{"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2},
			map[string]any{"type": 2, "tagName": "html", "attributes": map[string]any{}, "id": 3, "childNodes": []any{
				map[string]any{"type": 2, "tagName": "head", "attributes": map[string]any{}, "id": 4, "childNodes": []any{}},
				map[string]any{"type": 2, "tagName": "body", "attributes": map[string]any{"style": "font: 24px sans-serif; padding: 40px"}, "id": 5, "childNodes": []any{
					map[string]any{"type": 2, "tagName": "h1", "attributes": map[string]any{"id": "clock"}, "id": 6, "childNodes": []any{
						map[string]any{"type": 3, "textContent": heading, "id": 7}}},
					map[string]any{"type": 2, "tagName": "p", "attributes": map[string]any{}, "id": 8, "childNodes": []any{
						map[string]any{"type": 3, "textContent": para, "id": 9}}},
				}},
			}},
		},
	}
	full, _ := json.Marshal(map[string]any{"type": 2, "data": map[string]any{"node": node, "initialOffset": map[string]any{"left": 0, "top": 0}}, "timestamp": ts})
	return []json.RawMessage{json.RawMessage(meta), full}
}

func textMutation(ts int64, id int, value string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"type": 3, "timestamp": ts, "data": map[string]any{
		"source": 0, "texts": []any{map[string]any{"id": id, "value": value}}, "attributes": []any{}, "removes": []any{}, "adds": []any{}}})
	return b
}

func click(ts int64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":3,"timestamp":%d,"data":{"source":2,"type":2,"id":6,"x":100,"y":60}}`, ts))
}

// tinyRecording is a 3-second recording whose paragraph says text.
func tinyRecording(start int64, text string) []json.RawMessage {
	evs := snapshot(start, "Tiny", text)
	evs = append(evs, click(start+1000), textMutation(start+3000, 7, "Tiny done"))
	return evs
}

// longRecording is minutes of a page whose heading counts seconds ("tick N"),
// in batches of batchSec seconds, with a full snapshot every snapEvery
// seconds (as the recorder's checkouts make). pad bytes of filler per second
// make it weigh something.
func longRecording(start int64, minutes, batchSec, snapEvery, pad int) [][]json.RawMessage {
	filler := strings.Repeat("x", pad)
	var batches [][]json.RawMessage
	var cur []json.RawMessage
	total := minutes * 60
	for sec := 0; sec <= total; sec++ {
		ts := start + int64(sec)*1000
		if sec%snapEvery == 0 {
			cur = append(cur, snapshot(ts, fmt.Sprintf("tick %d", sec), filler)...)
		} else {
			cur = append(cur, textMutation(ts, 7, fmt.Sprintf("tick %d", sec)), textMutation(ts, 9, fmt.Sprintf("%d %s", sec, filler)))
		}
		if sec%7 == 3 {
			cur = append(cur, click(ts+500))
		}
		if (sec+1)%batchSec == 0 || sec == total {
			batches = append(batches, cur)
			cur = nil
		}
	}
	return batches
}
