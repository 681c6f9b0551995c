package zdict

// builtin is the content of the built-in dictionary (id 1), for projects
// with no dictionary of their own yet: the vocabulary of rrweb events and
// of the HTML they carry, as raw zstd history (the most common last,
// where matches are cheapest). It is part of the segment format: never
// change it, add a dictionary with another id instead.
const builtin = `<!DOCTYPE html>` +
	`{"type":1,"name":"html","publicId":"","systemId":"","id":1}` +
	`"attributes":{"charset":"utf-8"}` +
	`"attributes":{"name":"viewport","content":"width=device-width, initial-scale=1"}` +
	`"attributes":{"rel":"stylesheet","href":"` +
	`"attributes":{"rel":"icon","href":"` +
	`"attributes":{"rel":"preload","as":"font","type":"font/woff2","crossorigin":"anonymous","href":"` +
	`{"type":2,"tagName":"script","attributes":{"src":"` +
	`{"type":2,"tagName":"noscript","attributes":{},"childNodes":[],"id":` +
	`{"type":2,"tagName":"meta","attributes":{"property":"og:` +
	`{"type":2,"tagName":"link","attributes":{"rel":"stylesheet","href":"` +
	`{"type":2,"tagName":"style","attributes":{"_cssText":"` +
	`@font-face { font-family: ` + "\\\"" + `; src: url(` + "\\\"" + `` +
	`@media (max-width: 768px) { ` +
	`{ display: flex; align-items: center; justify-content: space-between; }` +
	`{ margin: 0px; padding: 0px; box-sizing: border-box; }` +
	`{ color: rgb(0, 0, 0); background-color: rgb(255, 255, 255); }` +
	`{"type":2,"tagName":"svg","attributes":{"xmlns":"http://www.w3.org/2000/svg","viewBox":"0 0 24 24","fill":"none","stroke":"currentColor"},"childNodes":[{"type":2,"tagName":"path","attributes":{"d":"` +
	`"isSVG":true,` +
	`{"type":2,"tagName":"img","attributes":{"src":"https://` +
	`,"alt":"","loading":"lazy","width":"` +
	`{"type":2,"tagName":"input","attributes":{"type":"text","name":"` +
	`{"type":2,"tagName":"input","attributes":{"type":"email","value":"***` +
	`{"type":2,"tagName":"button","attributes":{"type":"submit","class":"btn btn-primary"},"childNodes":[` +
	`{"type":2,"tagName":"form","attributes":{"method":"post","action":"` +
	`{"type":2,"tagName":"select","attributes":{` +
	`{"type":2,"tagName":"option","attributes":{"value":"` +
	`{"type":2,"tagName":"label","attributes":{"for":"` +
	`{"type":2,"tagName":"table","attributes":{` +
	`{"type":2,"tagName":"tr","attributes":{},"childNodes":[{"type":2,"tagName":"td","attributes":{},"childNodes":[` +
	`{"type":2,"tagName":"ul","attributes":{"class":"` +
	`{"type":2,"tagName":"li","attributes":{"class":"` +
	`{"type":2,"tagName":"nav","attributes":{"class":"` +
	`{"type":2,"tagName":"header","attributes":{"class":"` +
	`{"type":2,"tagName":"footer","attributes":{"class":"` +
	`{"type":2,"tagName":"main","attributes":{"class":"` +
	`{"type":2,"tagName":"section","attributes":{"class":"` +
	`{"type":2,"tagName":"h1","attributes":{"class":"` +
	`{"type":2,"tagName":"h2","attributes":{"class":"` +
	`{"type":2,"tagName":"h3","attributes":{"class":"` +
	`{"type":2,"tagName":"p","attributes":{"class":"` +
	`{"type":2,"tagName":"span","attributes":{"class":"` +
	`{"type":2,"tagName":"a","attributes":{"href":"https://` +
	`{"type":2,"tagName":"a","attributes":{"href":"/` +
	`{"type":2,"tagName":"div","attributes":{"id":"` +
	`{"type":2,"tagName":"head","attributes":{},"childNodes":[{"type":2,"tagName":"meta","attributes":{"charset":"utf-8"},"childNodes":[],"id":` +
	`{"type":0,"childNodes":[{"type":1,"name":"html","publicId":"","systemId":"","id":2},{"type":2,"tagName":"html","attributes":{"lang":"en"},"childNodes":[` +
	`],"id":1},"initialOffset":{"left":0,"top":0}},"timestamp":` +
	`{"type":4,"data":{"href":"https://` +
	`","width":1920,"height":1080},"timestamp":` +
	`","width":1440,"height":900},"timestamp":` +
	`","width":390,"height":844},"timestamp":` +
	`{"type":2,"data":{"node":{"type":0,"childNodes":[` +
	`{"type":5,"data":{"tag":"trailmap/page","payload":{"referrer":"https://www.google.com/","title":"` +
	`{"type":5,"data":{"tag":"trailmap/doc","payload":{"width":` +
	`{"type":5,"data":{"tag":"trailmap/click","payload":{"id":` +
	`,"box":{"x":` +
	`{"type":5,"data":{"tag":"trailmap/checkout","payload":{}},"timestamp":` +
	`{"type":3,"data":{"source":4,"width":` +
	`{"type":3,"data":{"source":5,"text":"***","isChecked":false,"id":` +
	`{"type":3,"data":{"source":0,"texts":[{"id":` +
	`,"value":"` +
	`{"type":3,"data":{"source":0,"texts":[],"attributes":[{"id":` +
	`,"attributes":{"class":"` +
	`,"attributes":{"style":{"transform":"translateX(` +
	`{"type":3,"data":{"source":0,"texts":[],"attributes":[],"removes":[{"parentId":` +
	`],"adds":[{"parentId":` +
	`,"nextId":null,"node":{"type":2,"tagName":"div","attributes":{"class":"` +
	`,"nextId":null,"node":{"type":3,"textContent":"` +
	`"removes":[],"adds":[]},"timestamp":` +
	`{"type":3,"data":{"source":2,"type":0,"id":` +
	`{"type":3,"data":{"source":2,"type":1,"id":` +
	`{"type":3,"data":{"source":2,"type":5,"id":` +
	`{"type":3,"data":{"source":2,"type":6,"id":` +
	`{"type":3,"data":{"source":2,"type":2,"id":` +
	`,"pointerType":0},"timestamp":` +
	`{"type":3,"data":{"source":3,"id":1,"x":0,"y":` +
	`{"type":3,"data":{"source":1,"positions":[{"x":` +
	`,"id":` +
	`,"timeOffset":-` +
	`},{"x":` +
	`]},"timestamp":17`
