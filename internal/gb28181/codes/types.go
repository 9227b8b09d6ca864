package codes

// TypeInfo names one type code (digits 11–13) of GB/T 28181-2016 Annex D,
// Table D.1. GB/T 28181-2022 keeps the structure and these assignments.
type TypeInfo struct {
	Name    string // English name
	Chinese string // the standard's term
}

// types holds the individually assigned type codes of GB/T 28181-2016
// Annex D, Table D.1. Codes inside a class range but not listed here are
// the standard's "extension" (扩展) codes; see classOf.
var types = map[int]TypeInfo{
	// 111–130 front-end main devices (前端主设备).
	111: {"DVR", "DVR"},
	112: {"video server", "视频服务器"},
	113: {"encoder", "编码器"},
	114: {"decoder", "解码器"},
	115: {"video switching matrix", "视频切换矩阵"},
	116: {"audio switching matrix", "音频切换矩阵"},
	117: {"alarm controller", "报警控制器"},
	118: {"NVR", "网络视频录像机(NVR)"},
	// 119 is listed as HVR in current editions; it is not certain that the
	// 2011 edition assigned it (there 119–130 may all have been extension).
	119: {"hybrid video recorder (HVR)", "混合硬盘录像机(HVR)"},
	// 120–130: extension of front-end main device types (扩展的前端主设备类型).

	// 131–199 front-end peripherals (前端外围设备); these are the channels
	// a device reports in its Catalog.
	131: {"camera", "摄像机"},
	132: {"IP camera", "网络摄像机(IPC)"},
	133: {"display", "显示器"},
	134: {"alarm input device", "报警输入设备"},  // e.g. infrared, smoke, access control
	135: {"alarm output device", "报警输出设备"}, // e.g. warning light, bell
	136: {"voice input device", "语音输入设备"},
	137: {"voice output device", "语音输出设备"},
	138: {"mobile transmission device", "移动传输设备"},
	139: {"other peripheral", "其他外围设备"},
	// 140–199: extension of front-end peripheral types (扩展的前端外围设备类型).

	// 200–299 platform devices (平台设备).
	200: {"central signalling control server", "中心信令控制服务器"},
	201: {"web application server", "Web应用服务器"},
	202: {"media distribution server", "媒体分发服务器"},
	203: {"proxy server", "代理服务器"},
	204: {"security server", "安全服务器"},
	205: {"alarm server", "报警服务器"},
	206: {"database server", "数据库服务器"},
	207: {"GIS server", "GIS服务器"},
	208: {"management server", "管理服务器"},
	209: {"access gateway", "接入网关"},
	210: {"media storage server", "媒体存储服务器"},
	211: {"signalling security routing gateway", "信令安全路由网关"},
	// 212–214: extension of platform device types.
	215: {"business group", "业务分组"},
	216: {"virtual organisation", "虚拟组织"},
	// 217–299: extension of platform device types.

	// 300–399 central users (中心用户).
	300: {"central user", "中心用户"},
	// 301–399: extension of central user types. (Some editions assign
	// industry role users inside this range; not tabulated here.)

	// 400–499 terminal users (终端用户).
	400: {"terminal user", "终端用户"},
	// 401–499: extension of terminal user types.

	// 500–599: the 2016 edition assigns platform-attached servers here
	// (平台外接服务器). The individual 5xx assignments are not tabulated
	// because they could not be verified; they validate as extension codes.
	// 600–999: extension (拓展类型).
}

// class is a range of type codes from Table D.1.
type class struct {
	lo, hi int
	kind   Kind
}

// classes lists the ranges of Table D.1 in ascending order. 000–110 is
// unassigned.
var classes = []class{
	{111, 130, KindDevice},
	{131, 199, KindChannel},
	{200, 299, KindPlatform}, // 215 and 216 are refined in kindOf
	{300, 399, KindCentralUser},
	{400, 499, KindTerminalUser},
	{500, 599, KindExternalServer},
	{600, 999, KindExtension},
}

// LookupType returns the name of an individually assigned type code.
// It reports false for extension and unassigned codes.
func LookupType(t int) (TypeInfo, bool) {
	ti, ok := types[t]
	return ti, ok
}

func kindOf(t int) Kind {
	switch t {
	case 215:
		return KindBusinessGroup
	case 216:
		return KindVirtualOrganization
	}
	for _, c := range classes {
		if t >= c.lo && t <= c.hi {
			return c.kind
		}
	}
	return KindUnknown
}

// NetworkInfo names a network identifier (digit 14).
type NetworkInfo struct {
	Name    string
	Chinese string
}

// networks is the network identifier table of GB/T 28181-2016 Annex D.
var networks = [10]NetworkInfo{
	0: {"video surveillance private network", "监控报警专网"},
	1: {"video surveillance private network", "监控报警专网"},
	2: {"video surveillance private network", "监控报警专网"},
	3: {"video surveillance private network", "监控报警专网"},
	4: {"video surveillance private network", "监控报警专网"},
	5: {"public security network", "公安信息网"},
	6: {"government network", "政务网"},
	7: {"Internet", "Internet网"},
	8: {"social resource access network", "社会资源接入网"},
	9: {"reserved", "预留"},
}

// provinces are the 34 province-level codes of GB/T 2260.
var provinces = map[string]string{
	"11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
	"21": "辽宁省", "22": "吉林省", "23": "黑龙江省",
	"31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
	"41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区", "46": "海南省",
	"50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省", "54": "西藏自治区",
	"61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区", "65": "新疆维吾尔自治区",
	"71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}

// ProvinceName returns the name of a GB/T 2260 province-level code ("44").
func ProvinceName(code string) (string, bool) {
	n, ok := provinces[code]
	return n, ok
}
