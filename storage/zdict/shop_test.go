package zdict_test

import (
	"fmt"
	"math/rand"
	"strings"
)

// catalog is a shop's products: name, price in cents, image id. Fixed, as
// a real shop's catalog is from one visit to the next.
var catalog = func() []struct {
	name  string
	price int
	img   int
} {
	r := rand.New(rand.NewSource(42))
	adj := []string{"Organic", "Classic", "Slim", "Relaxed", "Merino", "Linen", "Vintage", "Everyday", "Recycled", "Heavyweight"}
	kind := []string{"cotton shirt", "denim jacket", "wool scarf", "leather boots", "summer dress", "chino trousers", "hoodie", "rain coat", "sneakers", "beanie"}
	colour := []string{"navy", "black", "sand", "olive", "white", "burgundy", "grey", "sky blue"}
	out := make([]struct {
		name  string
		price int
		img   int
	}, 200)
	for i := range out {
		out[i].name = fmt.Sprintf("%s %s, %s", adj[r.Intn(len(adj))], kind[r.Intn(len(kind))], colour[r.Intn(len(colour))])
		out[i].price = 1500 + r.Intn(20000)
		out[i].img = 100000 + r.Intn(900000)
	}
	return out
}()

// ShopVisit is one short visit to a shop as Trailmap's recorder sends it:
// a category or product page (Meta, full snapshot of a page with a header,
// navigation, a grid of products from the catalog, a footer), the
// recorder's page and doc events, a few seconds of mouse moves along a
// path, a scroll, a click and a DOM change or two.
func ShopVisit(r *rand.Rand, n int) []byte {
	var b strings.Builder
	ts := int64(1_764_000_000_000) + int64(n)*97_000 + int64(r.Intn(5000))
	id := 3
	node := func(tag, attrs, kids string) string {
		id++
		return fmt.Sprintf(`{"type":2,"tagName":"%s","attributes":{%s},"childNodes":[%s],"id":%d}`, tag, attrs, kids, id)
	}
	text := func(s string) string { id++; return fmt.Sprintf(`{"type":3,"textContent":%q,"id":%d}`, s, id) }
	var nav []string
	for _, c := range []string{"Women", "Men", "Kids", "Sale", "New in", "Brands", "Journal"} {
		nav = append(nav, node("li", `"class":"nav__item"`, node("a", fmt.Sprintf(`"href":"/c/%s","class":"nav__link"`, strings.ReplaceAll(strings.ToLower(c), " ", "-")), text(c))))
	}
	category := []string{"women", "men", "kids", "sale", "new-in"}[r.Intn(5)]
	page := r.Intn(4) + 1
	var cards []string
	first := r.Intn(len(catalog) - 24)
	for k := 0; k < 24; k++ {
		p := catalog[first+k]
		cards = append(cards, node("article", `"class":"product-card","data-testid":"product-card"`, strings.Join([]string{
			node("a", fmt.Sprintf(`"href":"/p/%d","class":"product-card__link"`, p.img), strings.Join([]string{
				node("img", fmt.Sprintf(`"src":"https://cdn.shop.example/img/p/%d-480.webp","srcset":"https://cdn.shop.example/img/p/%d-480.webp 480w, https://cdn.shop.example/img/p/%d-960.webp 960w","alt":%q,"loading":"lazy","width":"480","height":"640","class":"product-card__img"`, p.img, p.img, p.img, p.name), ""),
				node("h3", `"class":"product-card__title"`, text(p.name)),
			}, ",")),
			node("span", `"class":"product-card__price"`, text(fmt.Sprintf("€%d.%02d", p.price/100, p.price%100))),
			node("button", fmt.Sprintf(`"type":"button","class":"btn btn--primary product-card__add","data-sku":"%d"`, p.img), text("Add to bag")),
		}, ",")))
	}
	style := node("style", `"_cssText":".nav__list { display: flex; gap: 24px; list-style: none; margin: 0px; padding: 0px; }.product-grid { display: grid; grid-template-columns: repeat(4, 1fr); gap: 24px; }.product-card__price { font-weight: 600; color: rgb(17, 24, 39); }.btn--primary { background-color: rgb(17, 24, 39); color: rgb(255, 255, 255); border-radius: 4px; padding: 10px 16px; }"`, "")
	head := node("head", "", strings.Join([]string{
		node("meta", `"charset":"utf-8"`, ""),
		node("title", "", text(fmt.Sprintf("%s – page %d – Shop Example", strings.Title(category), page))),
		node("link", `"rel":"stylesheet","href":"https://shop.example/assets/app.3f2a9c1e.css"`, ""),
		style,
	}, ","))
	body := node("body", `"class":"page page--category"`, strings.Join([]string{
		node("header", `"class":"site-header"`, node("a", `"href":"/","class":"logo"`, text("Shop Example"))+","+
			node("nav", `"class":"nav","aria-label":"Main"`, node("ul", `"class":"nav__list"`, strings.Join(nav, ",")))),
		node("main", `"class":"container"`, node("h1", `"class":"page-title"`, text(strings.Title(category)))+","+
			node("div", `"class":"product-grid"`, strings.Join(cards, ","))),
		node("footer", `"class":"site-footer"`, text("© 2026 Shop Example · Delivery · Returns · Terms · Privacy")),
	}, ","))
	html := node("html", `"lang":"en"`, head+","+body)
	href := fmt.Sprintf("https://shop.example/c/%s?page=%d", category, page)
	fmt.Fprintf(&b, `{"type":4,"data":{"href":%q,"width":1440,"height":900},"timestamp":%d}`+"\n", href, ts)
	fmt.Fprintf(&b, `{"type":2,"data":{"node":{"type":0,"childNodes":[{"type":1,"name":"html","publicId":"","systemId":"","id":2},%s],"id":1},"initialOffset":{"left":0,"top":0}},"timestamp":%d}`+"\n", html, ts+12)
	fmt.Fprintf(&b, `{"type":5,"data":{"tag":"trailmap/page","payload":{"referrer":"https://www.google.com/","title":"Shop Example"}},"timestamp":%d}`+"\n", ts+14)
	fmt.Fprintf(&b, `{"type":5,"data":{"tag":"trailmap/doc","payload":{"width":1440,"height":%d}},"timestamp":%d}`+"\n", 2400+r.Intn(800), ts+15)
	x, y := 700+r.Intn(100), 300+r.Intn(100)
	for k := 0; k < 15+r.Intn(30); k++ {
		ts += int64(450 + r.Intn(150))
		var pos []string
		for j := 0; j < 5; j++ {
			x += r.Intn(21) - 10
			y += r.Intn(21) - 8
			pos = append(pos, fmt.Sprintf(`{"x":%d,"y":%d,"id":%d,"timeOffset":-%d}`, x, y, 4+r.Intn(id-4), 400-j*100))
		}
		fmt.Fprintf(&b, `{"type":3,"data":{"source":1,"positions":[%s]},"timestamp":%d}`+"\n", strings.Join(pos, ","), ts)
	}
	fmt.Fprintf(&b, `{"type":3,"data":{"source":3,"id":1,"x":0,"y":%d},"timestamp":%d}`+"\n", 200*(1+r.Intn(8)), ts+100)
	target := 4 + r.Intn(id-4)
	fmt.Fprintf(&b, `{"type":3,"data":{"source":2,"type":1,"id":%d,"x":%d,"y":%d,"pointerType":0},"timestamp":%d}`+"\n", target, x, y, ts+300)
	fmt.Fprintf(&b, `{"type":3,"data":{"source":2,"type":0,"id":%d,"x":%d,"y":%d,"pointerType":0},"timestamp":%d}`+"\n", target, x, y, ts+380)
	fmt.Fprintf(&b, `{"type":3,"data":{"source":2,"type":2,"id":%d,"x":%d,"y":%d,"pointerType":0},"timestamp":%d}`+"\n", target, x, y, ts+381)
	fmt.Fprintf(&b, `{"type":5,"data":{"tag":"trailmap/click","payload":{"id":%d,"x":%d,"y":%d,"box":{"x":%d,"y":%d,"w":180,"h":40}}},"timestamp":%d}`+"\n", target, x, y, x-90, y-20, ts+382)
	fmt.Fprintf(&b, `{"type":3,"data":{"source":0,"texts":[],"attributes":[{"id":%d,"attributes":{"class":"btn btn--primary product-card__add is-added"}}],"removes":[],"adds":[]},"timestamp":%d}`+"\n", target, ts+420)
	fmt.Fprintf(&b, `{"type":3,"data":{"source":0,"texts":[{"id":%d,"value":"Added"}],"attributes":[],"removes":[],"adds":[]},"timestamp":%d}`+"\n", target+1, ts+421)
	return []byte(b.String())
}
