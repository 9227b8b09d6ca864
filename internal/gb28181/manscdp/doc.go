// Package manscdp decodes and encodes the MANSCDP XML bodies carried in SIP
// MESSAGE and NOTIFY requests by GB/T 28181-2016 §A.2 and GB/T 28181-2022 §A.2
// (Query, Control, Notify and Response, each with CmdType, SN and DeviceID).
//
// Decoding follows what real devices send rather than the letter of the
// standard: the charset is decided from the XML declaration and the bytes
// themselves (see [Parse]), element and attribute names match regardless of
// case, values are trimmed, unescaped '&' is repaired, unknown elements are
// ignored and anything after the root element is ignored. Errors say what is
// wrong and where (a line, or an element path such as
// "Response/DeviceList/Item[3]/Port").
//
// Encoding ([Marshal] and the Query/Control/Response builders) writes what the
// most devices accept: an XML declaration naming GB2312 and a GB18030-encoded
// body (GB18030 is a superset of GB2312 and GBK), or UTF-8 on request.
//
// The package is a pure codec: it does no I/O and starts no goroutines.
// [Assembler] collects multi-message Catalog and RecordInfo responses and is
// safe for concurrent use.
package manscdp
