package app

import (
	"fmt"
	"math"

	"github.com/xueliang/xueliang/internal/model"
)

// The simulated city of the demo: Qingyuan (清远市), Guangdong. County-level
// codes are the real GB/T 2260 codes. Towns and villages use the 9- and
// 12-digit statistical division codes (统计用区划代码); the ones below are
// illustrative where the real code was not at hand.

// DemoDivisions returns the division tree of the demo city, parents first.
func DemoDivisions() []model.Division {
	d := func(code, name string, level model.DivisionLevel, parent string) model.Division {
		return model.Division{Code: code, Name: name, Level: level, ParentCode: parent}
	}
	return []model.Division{
		d("440000", "广东省", model.DivisionLevelProvince, ""),
		d("441800", "清远市", model.DivisionLevelCity, "440000"),
		d("441802", "清城区", model.DivisionLevelCounty, "441800"),
		d("441803", "清新区", model.DivisionLevelCounty, "441800"),
		d("441821", "佛冈县", model.DivisionLevelCounty, "441800"),
		d("441823", "阳山县", model.DivisionLevelCounty, "441800"),
		d("441825", "连山壮族瑶族自治县", model.DivisionLevelCounty, "441800"),
		d("441826", "连南瑶族自治县", model.DivisionLevelCounty, "441800"),
		d("441881", "英德市", model.DivisionLevelCounty, "441800"),
		d("441882", "连州市", model.DivisionLevelCounty, "441800"),
		d("441802001", "凤城街道", model.DivisionLevelTown, "441802"),
		d("441803101", "太和镇", model.DivisionLevelTown, "441803"),
		d("441821101", "汤塘镇", model.DivisionLevelTown, "441821"),
		d("441821101201", "汤塘村", model.DivisionLevelVillage, "441821101"),
		d("441821101202", "围镇村", model.DivisionLevelVillage, "441821101"),
		d("441823100", "阳城镇", model.DivisionLevelTown, "441823"),
		d("441825100", "吉田镇", model.DivisionLevelTown, "441825"),
		d("441826100", "三江镇", model.DivisionLevelTown, "441826"),
		d("441881100", "英城街道", model.DivisionLevelTown, "441881"),
		d("441882108", "龙坪镇", model.DivisionLevelTown, "441882"),
		d("441882108201", "元璧村", model.DivisionLevelVillage, "441882108"),
		d("441882108202", "孔围村", model.DivisionLevelVillage, "441882108"),
	}
}

// DemoCamera is one simulated camera of the demo city.
type DemoCamera struct {
	Code     string // 20-digit GB/T 28181 channel code
	Name     string
	Division string
	Lat, Lng float64
	Heading  float64
	Clip     string // sim clip name
	Audio    string // "", "aac", "g711a"
	// Username and Password are set for cameras that require credentials.
	Username, Password string
}

// demoSite is a place where the demo puts cameras.
type demoSite struct {
	division, prefix string
	lat, lng         float64
	spots            []string
}

var demoSites = []demoSite{
	{"441802001", "清城区凤城街道", 23.682, 113.056, []string{"北江路口", "市政府广场", "人民公园东门", "客运站出口", "清远大桥南"}},
	{"441803101", "清新区太和镇", 23.734, 112.984, []string{"镇政府门口", "太和市场", "滨江路口", "中学校门"}},
	{"441821101", "佛冈县汤塘镇", 23.785, 113.420, []string{"镇中心路口", "汤塘温泉路", "卫生院门口", "派出所门口"}},
	{"441821101201", "佛冈县汤塘镇汤塘村", 23.791, 113.412, []string{"村口", "村委会", "祠堂广场"}},
	{"441821101202", "佛冈县汤塘镇围镇村", 23.778, 113.436, []string{"村口", "桥头", "林地边"}},
	{"441823100", "阳山县阳城镇", 24.465, 112.641, []string{"中心广场", "阳山大桥", "汽车站"}},
	{"441825100", "连山县吉田镇", 24.570, 112.087, []string{"县政府路口", "吉田市场", "福寿路"}},
	{"441826100", "连南县三江镇", 24.719, 112.287, []string{"三江大桥", "民族广场", "瑶寨路口"}},
	{"441881100", "英德市英城街道", 24.186, 113.405, []string{"和平路口", "英德站", "北江堤", "茶园路"}},
	{"441882108", "连州市龙坪镇", 24.916, 112.448, []string{"镇政府", "龙坪圩", "卫生院"}},
	{"441882108201", "连州市龙坪镇元璧村", 24.928, 112.431, []string{"村口", "村尾", "山林边", "晒谷场"}},
	{"441882108202", "连州市龙坪镇孔围村", 24.905, 112.462, []string{"村口", "小学门口"}},
}

// demoClips rotates through the embedded clips; the H.265 clip appears once
// so that the demo shows how an H.265 camera is handled.
var demoClips = []string{"testsrc", "bars", "street", "mandelbrot"}

// DemoCameras returns the cameras of the demo city (41 of them), spread
// over the sites with positions and headings.
func DemoCameras() []DemoCamera {
	var cams []DemoCamera
	n := 0
	for _, s := range demoSites {
		for i, spot := range s.spots {
			n++
			// Channel code: division(8) industry(2) type(3) network(1) serial(6).
			// 8-digit centre code = county code + "00"; industry 00 (public
			// security video); type 132 (network camera); network 0.
			code := s.division[:6] + "00" + "00" + "132" + "0" + fmt.Sprintf("%06d", n)
			angle := float64(i) * 2 * math.Pi / float64(len(s.spots))
			c := DemoCamera{
				Code:     code,
				Name:     s.prefix + spot,
				Division: s.division,
				Lat:      s.lat + 0.004*math.Sin(angle),
				Lng:      s.lng + 0.004*math.Cos(angle),
				Heading:  float64((n * 47) % 360),
				Clip:     demoClips[n%len(demoClips)],
			}
			switch n % 10 {
			case 3:
				c.Audio = "aac"
			case 7:
				c.Audio = "g711a"
			}
			cams = append(cams, c)
		}
	}
	// Special cameras that show what the platform does with them.
	cams[5].Clip = "testsrc.h265"
	cams[9].Username, cams[9].Password = "admin", "Xl-demo-9"
	return cams
}
