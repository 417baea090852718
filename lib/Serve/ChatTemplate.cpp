//===- ChatTemplate.cpp - The Jinja subset chat templates use -------------===//
//
// A template is lexed into text and tags (with jinja2's trim_blocks and
// lstrip_blocks, and '-' whitespace control), parsed into a tree of
// statements and expressions, and evaluated over JSON values, with a
// distinct "undefined" for names and keys that are not there (jinja2's
// Undefined: false, empty, `is defined` false).
//
//===----------------------------------------------------------------------===//

#include "fairkv/Serve/ChatTemplate.h"

#include "fairkv/Tokenizer/Strings.h"

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <sstream>

using namespace fairkv::serve;
using fairkv::placement::makeError;
// Insertion order, as Python's dicts keep it (tojson prints keys in it).
using Json = nlohmann::ordered_json;

namespace {

/// A template error, caught at the top: one line.
struct TemplateError {
  std::string message;
};

[[noreturn]] void raise(const std::string &message) {
  throw TemplateError{message};
}

Json undefined() { return Json(Json::value_t::discarded); }
bool isUndefined(const Json &v) { return v.is_discarded(); }

bool truthy(const Json &v) {
  if (isUndefined(v) || v.is_null())
    return false;
  if (v.is_boolean())
    return v.get<bool>();
  if (v.is_number())
    return v.get<double>() != 0;
  if (v.is_string())
    return !v.get_ref<const std::string &>().empty();
  if (v.is_array() || v.is_object())
    return !v.empty();
  return false;
}

std::string repr(const Json &v);

/// Python's repr() of a float: the shortest digits that read back as it,
/// in fixed notation for decimal exponents from -4 to 15 ("1234.0",
/// "0.0001"), else scientific ("1e+16", "1.5e-05").
std::string reprFloat(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d < 0 ? "-inf" : "inf";
  char buffer[64];
  const std::to_chars_result r = std::to_chars(
      buffer, buffer + sizeof(buffer), d, std::chars_format::scientific);
  const std::string sci(buffer, r.ptr);
  const size_t e = sci.find('e');
  const bool negative = sci[0] == '-';
  std::string mantissa = sci.substr(negative, e - negative), digits;
  for (char c : mantissa)
    if (c != '.')
      digits += c;
  const int exponent = std::atoi(sci.c_str() + e + 1);
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(-exponent - 1, '0') + digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out += digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1)
    out += "." + digits.substr(1);
  char exp[8];
  std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+',
                exponent < 0 ? -exponent : exponent);
  return out + exp;
}

/// Python's str(): a string as it is, anything else as repr() writes it.
std::string str(const Json &v) {
  if (isUndefined(v))
    return "";
  if (v.is_string())
    return v.get<std::string>();
  return repr(v);
}

/// Python's repr() of a string: single quotes unless it holds one and no
/// double quote, backslash escapes for the quote, backslash and what is
/// not printable (str.isprintable: controls, format, separators other than
/// the space, surrogates, private use, unassigned).
std::string reprString(const std::string &s) {
  const bool dq = s.find('\'') != std::string::npos &&
                  s.find('"') == std::string::npos;
  const char quote = dq ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size();) {
    utf8proc_int32_t cp = -1;
    utf8proc_ssize_t n = utf8proc_iterate(
        reinterpret_cast<const utf8proc_uint8_t *>(s.data() + i),
        static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) { // not UTF-8: Python's strings never hold such a byte
      out += "\\x";
      const char *hex = "0123456789abcdef";
      out += hex[static_cast<unsigned char>(s[i]) >> 4];
      out += hex[static_cast<unsigned char>(s[i]) & 15];
      ++i;
      continue;
    }
    const char c = s[i];
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      const utf8proc_category_t k = utf8proc_category(cp);
      const bool printable =
          cp == ' ' ||
          !(k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF ||
            k == UTF8PROC_CATEGORY_CS || k == UTF8PROC_CATEGORY_CO ||
            k == UTF8PROC_CATEGORY_CN || k == UTF8PROC_CATEGORY_ZL ||
            k == UTF8PROC_CATEGORY_ZP || k == UTF8PROC_CATEGORY_ZS);
      if (printable) {
        out.append(s, i, static_cast<size_t>(n));
      } else {
        char buffer[12];
        std::snprintf(buffer, sizeof(buffer),
                      cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x"
                                                          : "\\U%08x",
                      static_cast<unsigned>(cp));
        out += buffer;
      }
    }
    i += static_cast<size_t>(n);
  }
  return out + quote;
}

/// Python's repr() of what a template holds: None, True, numbers, quoted
/// strings, [a, b] and {'k': v}.
std::string repr(const Json &v) {
  if (isUndefined(v) || v.is_null())
    return "None";
  if (v.is_string())
    return reprString(v.get_ref<const std::string &>());
  if (v.is_boolean())
    return v.get<bool>() ? "True" : "False";
  if (v.is_number_integer())
    return std::to_string(v.get<int64_t>());
  if (v.is_number())
    return reprFloat(v.get<double>());
  std::string out = v.is_array() ? "[" : "{";
  bool first = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    out += first ? "" : ", ";
    first = false;
    if (v.is_object())
      out += reprString(it.key()) + ": ";
    out += repr(*it);
  }
  return out + (v.is_array() ? "]" : "}");
}

//===----------------------------------------------------------------------===//
// Lexing
//===----------------------------------------------------------------------===//

struct Token {
  enum Kind { Text, Expr, Block } kind;
  std::string body;
};

/// Where an expression or block tag's `close` is, from `from`: as Jinja's
/// lexer finds it, outside string literals and with brackets balanced, so
/// {{ {"a": {"b": 1}} }} and {{ "}}" }} end where they should.
size_t tagEnd(const std::string &src, size_t from, const std::string &close) {
  std::string open;
  for (size_t i = from; i < src.size(); ++i) {
    const char c = src[i];
    if (open.empty() && src.compare(i, close.size(), close) == 0)
      return i;
    if (c == '\'' || c == '"') {
      for (++i; i < src.size() && src[i] != c; ++i)
        if (src[i] == '\\')
          ++i;
      if (i >= src.size())
        return std::string::npos;
    } else if (c == '(' || c == '[' || c == '{') {
      open += c;
    } else if ((c == ')' || c == ']' || c == '}') && !open.empty()) {
      open.pop_back();
    }
  }
  return std::string::npos;
}

std::vector<Token> lex(const std::string &src) {
  std::vector<Token> out;
  size_t pos = 0;
  bool stripNext = false;    // the previous tag ended with '-'
  bool trimNewline = false;  // trim_blocks: the previous tag was a block
  for (;;) {
    size_t open = pos;
    for (; (open = src.find('{', open)) != std::string::npos; ++open)
      if (open + 1 < src.size() &&
          (src[open + 1] == '{' || src[open + 1] == '%' || src[open + 1] == '#'))
        break;
    std::string text = src.substr(pos, open == std::string::npos
                                           ? std::string::npos
                                           : open - pos);
    if (stripNext) {
      size_t k = text.find_first_not_of(" \t\r\n");
      text = k == std::string::npos ? "" : text.substr(k);
    } else if (trimNewline && !text.empty() && text[0] == '\n') {
      text.erase(0, 1);
    }
    if (open == std::string::npos) {
      if (!text.empty())
        out.push_back({Token::Text, text});
      return out;
    }
    const char kind = src[open + 1];
    const bool stripBefore = open + 2 < src.size() && src[open + 2] == '-';
    const bool keepBefore = open + 2 < src.size() && src[open + 2] == '+';
    if (stripBefore) {
      size_t k = text.find_last_not_of(" \t\r\n");
      text = k == std::string::npos ? "" : text.substr(0, k + 1);
    } else if ((kind == '%' || kind == '#') && !keepBefore) {
      // lstrip_blocks: the spaces and tabs between the line's start (in the
      // source) and a block tag go.
      size_t k = open;
      while (k > pos && (src[k - 1] == ' ' || src[k - 1] == '\t'))
        --k;
      if (k == 0 || src[k - 1] == '\n') {
        size_t n = std::min(text.size(), open - k);
        if (text.find_last_not_of(" \t") == std::string::npos ||
            text.find_last_not_of(" \t") < text.size() - n)
          text.resize(text.size() - n);
      }
    }
    if (!text.empty())
      out.push_back({Token::Text, text});
    const std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t end = kind == '#' ? src.find(close, open + 2)
                             : tagEnd(src, open + 2, close);
    if (end == std::string::npos)
      raise("a tag opened at offset " + std::to_string(open) +
            " is never closed");
    size_t bodyStart = open + 2 + (stripBefore || keepBefore ? 1 : 0);
    size_t bodyEnd = end;
    const bool stripAfter = end > bodyStart && src[end - 1] == '-';
    if (stripAfter)
      --bodyEnd;
    if (kind != '#')
      out.push_back({kind == '{' ? Token::Expr : Token::Block,
                     src.substr(bodyStart, bodyEnd - bodyStart)});
    stripNext = stripAfter;
    trimNewline = kind != '{';
    pos = end + 2;
  }
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

struct Scope;

struct Expr {
  virtual ~Expr() = default;
  virtual Json eval(Scope &scope) const = 0;
};
using ExprPtr = std::unique_ptr<Expr>;

struct Scope {
  std::vector<std::map<std::string, Json>> frames;
  Json lookup(const std::string &name) const {
    for (auto it = frames.rbegin(); it != frames.rend(); ++it)
      if (auto f = it->find(name); f != it->end())
        return f->second;
    return undefined();
  }
  void set(const std::string &name, Json v) { frames.back()[name] = std::move(v); }
  Json *find(const std::string &name) {
    for (auto it = frames.rbegin(); it != frames.rend(); ++it)
      if (auto f = it->find(name); f != it->end())
        return &f->second;
    return nullptr;
  }
};

struct Literal : Expr {
  Json value;
  explicit Literal(Json v) : value(std::move(v)) {}
  Json eval(Scope &) const override { return value; }
};

/// The functions a template can call (Jinja's range, dict and namespace,
/// transformers' raise_exception and strftime_now): defined names, so that
/// `strftime_now is defined` holds as it does in transformers.
bool isGlobalFunction(const std::string &name) {
  return name == "range" || name == "dict" || name == "namespace" ||
         name == "raise_exception" || name == "strftime_now";
}

struct Name : Expr {
  std::string name;
  explicit Name(std::string n) : name(std::move(n)) {}
  Json eval(Scope &scope) const override {
    Json v = scope.lookup(name);
    if (isUndefined(v) && isGlobalFunction(name))
      return Json::object({{"__function__", name}});
    return v;
  }
};

struct ListExpr : Expr {
  std::vector<ExprPtr> items;
  Json eval(Scope &scope) const override {
    Json out = Json::array();
    for (const auto &e : items)
      out.push_back(e->eval(scope));
    return out;
  }
};

struct DictExpr : Expr {
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
  Json eval(Scope &scope) const override {
    Json out = Json::object();
    for (const auto &[k, v] : items)
      out[str(k->eval(scope))] = v->eval(scope);
    return out;
  }
};

/// Where each code point of UTF-8 `s` starts, then s.size(): Python's
/// strings index, slice, count and reverse code points, not bytes. A byte
/// that starts no well-formed sequence counts as one.
std::vector<size_t> codePoints(const std::string &s) {
  std::vector<size_t> at;
  for (size_t i = 0; i < s.size();) {
    at.push_back(i);
    const auto lead = static_cast<unsigned char>(s[i]);
    size_t n = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3
               : (lead >> 3) == 30 ? 4 : 1;
    for (size_t k = 1; k < n; ++k)
      if (i + k >= s.size() ||
          (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80)
        n = 1;
    i += n;
  }
  at.push_back(s.size());
  return at;
}

/// An integer operand (of a slice, range()): Python refuses any other type.
int64_t integerOf(const Json &v, const char *what) {
  if (!v.is_number_integer())
    raise(std::string(what) + " must be an integer, got " + v.type_name());
  return v.get<int64_t>();
}

Json index(const Json &base, const Json &key) {
  if (base.is_object() && key.is_string()) {
    auto it = base.find(key.get<std::string>());
    return it == base.end() ? undefined() : *it;
  }
  if ((base.is_array() || base.is_string()) && key.is_number_integer()) {
    std::vector<size_t> at;
    if (base.is_string())
      at = codePoints(base.get_ref<const std::string &>());
    int64_t n = static_cast<int64_t>(base.is_array() ? base.size()
                                                     : at.size() - 1);
    int64_t i = key.get<int64_t>();
    if (i < 0)
      i += n;
    if (i < 0 || i >= n)
      return undefined();
    if (base.is_array())
      return base[i];
    return base.get_ref<const std::string &>().substr(at[i], at[i + 1] - at[i]);
  }
  return undefined();
}

struct Attr : Expr {
  ExprPtr base;
  std::string name;
  Json eval(Scope &scope) const override {
    return index(base->eval(scope), name);
  }
};

struct Subscript : Expr {
  ExprPtr base, key;
  Json eval(Scope &scope) const override {
    return index(base->eval(scope), key->eval(scope));
  }
};

struct Slice : Expr {
  ExprPtr base, start, stop, step;
  Json eval(Scope &scope) const override {
    Json b = base->eval(scope);
    const bool isStr = b.is_string();
    if (!b.is_array() && !isStr)
      raise("only lists and strings can be sliced");
    std::vector<size_t> at;
    if (isStr)
      at = codePoints(b.get_ref<const std::string &>());
    int64_t n = static_cast<int64_t>(isStr ? at.size() - 1 : b.size());
    // None (or nothing) is the default, as in Python, which refuses any
    // other non-integer.
    auto operand = [&](const ExprPtr &e, bool &given) {
      Json v = e ? e->eval(scope) : Json();
      given = !v.is_null();
      return given ? integerOf(v, "a slice index") : 0;
    };
    bool given = false;
    int64_t st = operand(step, given);
    if (!given)
      st = 1;
    if (st == 0)
      raise("slice step cannot be zero");
    auto bound = [&](const ExprPtr &e, int64_t fallback) {
      bool given = false;
      int64_t v = operand(e, given);
      if (!given)
        return fallback;
      if (v < 0)
        v += n;
      return std::max<int64_t>(st > 0 ? 0 : -1, std::min<int64_t>(v, st > 0 ? n : n - 1));
    };
    int64_t a = bound(start, st > 0 ? 0 : n - 1), z = bound(stop, st > 0 ? n : -1);
    Json out = Json::array();
    std::string s;
    // i + st may pass the 64-bit range, which ends the slice as it would
    // pass its bound.
    for (int64_t i = a; st > 0 ? i < z : i > z;) {
      if (isStr)
        s.append(b.get_ref<const std::string &>(), at[i], at[i + 1] - at[i]);
      else
        out.push_back(b[i]);
      if (__builtin_add_overflow(i, st, &i))
        break;
    }
    return isStr ? Json(s) : out;
  }
};

/// Python's bool is an int: True + 1 is 2 and True == 1.
Json numeric(const Json &v) {
  return v.is_boolean() ? Json(int64_t(v.get<bool>())) : v;
}

/// Python's ==: numbers by value (integers exactly, booleans as 0 and 1),
/// lists and mappings item by item.
bool equal(const Json &a0, const Json &b0) {
  if (isUndefined(a0) || isUndefined(b0))
    return isUndefined(a0) && isUndefined(b0);
  const Json a = numeric(a0), b = numeric(b0);
  if (a.is_number_integer() && b.is_number_integer())
    return a.get<int64_t>() == b.get<int64_t>();
  if (a.is_number() && b.is_number())
    return a.get<double>() == b.get<double>();
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size())
      return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!equal(a[i], b[i]))
        return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size())
      return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !equal(*it, *other))
        return false;
    }
    return true;
  }
  return a == b;
}

bool contains(const Json &haystack, const Json &needle) {
  if (haystack.is_string())
    return needle.is_string() &&
           haystack.get<std::string>().find(needle.get<std::string>()) !=
               std::string::npos;
  if (haystack.is_array()) {
    for (const Json &v : haystack)
      if (equal(v, needle))
        return true;
    return false;
  }
  if (haystack.is_object())
    return needle.is_string() && haystack.contains(needle.get<std::string>());
  return false;
}

struct Binary : Expr {
  std::string op;
  ExprPtr lhs, rhs;
  Json eval(Scope &scope) const override {
    if (op == "and") {
      Json l = lhs->eval(scope);
      return truthy(l) ? rhs->eval(scope) : l;
    }
    if (op == "or") {
      Json l = lhs->eval(scope);
      return truthy(l) ? l : rhs->eval(scope);
    }
    return apply(op, lhs->eval(scope), rhs->eval(scope));
  }
  /// `op` (not and/or) on two values.
  static Json apply(const std::string &op, const Json &l0, const Json &r0) {
    // Arithmetic and order take booleans as the integers they are.
    const bool arithmetic = op != "==" && op != "!=" && op != "in" &&
                            op != "not in" && op != "~";
    const Json l = arithmetic ? numeric(l0) : l0, r = arithmetic ? numeric(r0) : r0;
    if (op == "==")
      return equal(l, r);
    if (op == "!=")
      return !equal(l, r);
    if (op == "in")
      return contains(r, l);
    if (op == "not in")
      return !contains(r, l);
    if (op == "~")
      return str(l) + str(r);
    if (op == "*" && ((l.is_string() || l.is_array()) != (r.is_string() || r.is_array()))) {
      // Python's repetition: "ab" * 3, 3 * [1]; a count below 1 gives none.
      const Json &seq = l.is_string() || l.is_array() ? l : r;
      const Json &n = &seq == &l ? r : l;
      if (!n.is_number_integer())
        raise("'*' repeats a " + std::string(seq.type_name()) +
              " by an integer, not a " + n.type_name());
      const int64_t times = std::max<int64_t>(0, n.get<int64_t>());
      const size_t unit = seq.is_string() ? seq.get_ref<const std::string &>().size()
                                          : seq.size();
      if (unit > 0 && static_cast<uint64_t>(times) > (uint64_t(1) << 26) / unit)
        raise("'*' repeats past 2^26 items");
      if (seq.is_string()) {
        std::string out;
        for (int64_t i = 0; i < times; ++i)
          out += seq.get_ref<const std::string &>();
        return out;
      }
      Json out = Json::array();
      for (int64_t i = 0; i < times; ++i)
        for (const Json &item : seq)
          out.push_back(item);
      return out;
    }
    if (op == "+") {
      if (l.is_string() && r.is_string())
        return l.get<std::string>() + r.get<std::string>();
      if (l.is_array() && r.is_array()) {
        Json out = l;
        for (const Json &v : r)
          out.push_back(v);
        return out;
      }
    }
    if (!l.is_number() || !r.is_number()) {
      if ((op == "<" || op == ">" || op == "<=" || op == ">=") &&
          l.is_string() && r.is_string()) {
        const std::string a = l, b = r;
        return op == "<" ? a < b : op == ">" ? a > b : op == "<=" ? a <= b : a >= b;
      }
      raise("'" + op + "' needs numbers, got " + std::string(l.type_name()) +
            " and " + r.type_name());
    }
    const bool ints = l.is_number_integer() && r.is_number_integer();
    const double a = l.get<double>(), b = r.get<double>();
    if (op == "<")
      return a < b;
    if (op == ">")
      return a > b;
    if (op == "<=")
      return a <= b;
    if (op == ">=")
      return a >= b;
    // Python's integers do not overflow; ours are 64-bit, and a result
    // past them is refused rather than wrapped.
    const int64_t x = ints ? l.get<int64_t>() : 0, y = ints ? r.get<int64_t>() : 0;
    int64_t v = 0;
    auto exact = [&](bool overflowed) {
      if (overflowed)
        raise("'" + op + "' overflows 64-bit integers");
      return Json(v);
    };
    if (op == "+")
      return ints ? exact(__builtin_add_overflow(x, y, &v)) : Json(a + b);
    if (op == "-")
      return ints ? exact(__builtin_sub_overflow(x, y, &v)) : Json(a - b);
    if (op == "*")
      return ints ? exact(__builtin_mul_overflow(x, y, &v)) : Json(a * b);
    if (op == "**") {
      if (ints && y >= 0) {
        // Exact by squaring; past 64 bits refused.
        int64_t base = x, e = y;
        v = 1;
        while (e > 0) {
          if ((e & 1) && __builtin_mul_overflow(v, base, &v))
            return exact(true);
          e >>= 1;
          if (e > 0 && __builtin_mul_overflow(base, base, &base))
            return exact(true);
        }
        return v;
      }
      if (a == 0 && b < 0)
        raise("0 cannot be raised to a negative power");
      if (a < 0 && b != std::floor(b))
        raise("a negative number to a fractional power is complex");
      const double p = std::pow(a, b);
      if (!std::isfinite(p))
        raise("'**' overflows a float");
      return p;
    }
    if (b == 0 && (op == "/" || op == "//" || op == "%"))
      raise("division by zero");
    if (op == "/")
      return a / b;
    if (op == "//") {
      if (!ints)
        return std::floor(a / b);
      // Floor division in integers (a double loses digits past 2^53).
      if (x == INT64_MIN && y == -1)
        return exact(true);
      v = x / y;
      if (x % y != 0 && ((x < 0) != (y < 0)))
        --v;
      return v;
    }
    if (op == "%") {
      if (ints) {
        // x % -1 is 0, and the one case C++ cannot divide.
        int64_t m = y == -1 ? 0 : x % y;
        if (m != 0 && ((m < 0) != (y < 0)))
          m += y;
        return m;
      }
      return a - b * std::floor(a / b);
    }
    raise("unknown operator '" + op + "'");
  }
};

/// Python's chained comparison, a < b < c: (a < b) and (b < c), with b
/// evaluated once.
struct Chain : Expr {
  std::vector<ExprPtr> operands;
  std::vector<std::string> ops;
  Json eval(Scope &scope) const override {
    Json left = operands[0]->eval(scope), result;
    for (size_t i = 0; i < ops.size(); ++i) {
      Json right = operands[i + 1]->eval(scope);
      result = Binary::apply(ops[i], left, right);
      if (!truthy(result))
        return result;
      left = std::move(right);
    }
    return result;
  }
};

struct Not : Expr {
  ExprPtr operand;
  Json eval(Scope &scope) const override { return !truthy(operand->eval(scope)); }
};

struct Negate : Expr {
  ExprPtr operand;
  Json eval(Scope &scope) const override {
    Json v = operand->eval(scope);
    if (v.is_number_integer()) {
      if (v.get<int64_t>() == INT64_MIN)
        raise("unary '-' overflows 64-bit integers");
      return -v.get<int64_t>();
    }
    if (v.is_number())
      return -v.get<double>();
    raise("unary '-' needs a number");
  }
};

struct Conditional : Expr {
  ExprPtr then, cond, otherwise;
  Json eval(Scope &scope) const override {
    if (truthy(cond->eval(scope)))
      return then->eval(scope);
    return otherwise ? otherwise->eval(scope) : undefined();
  }
};

struct Test : Expr {
  ExprPtr operand;
  std::string name;
  bool negated = false;
  std::vector<ExprPtr> args;
  Json eval(Scope &scope) const override {
    Json v = operand->eval(scope);
    bool r;
    if (name == "defined")
      r = !isUndefined(v);
    else if (name == "undefined")
      r = isUndefined(v);
    else if (name == "none")
      r = v.is_null();
    else if (name == "string")
      r = v.is_string();
    else if (name == "number" || name == "integer")
      r = name == "number" ? v.is_number() : v.is_number_integer();
    else if (name == "boolean")
      r = v.is_boolean();
    else if (name == "mapping")
      r = v.is_object();
    else if (name == "sequence" || name == "iterable")
      r = v.is_array() || v.is_string() || (name == "iterable" && v.is_object());
    else if (name == "true" || name == "false")
      r = v.is_boolean() && v.get<bool>() == (name == "true");
    else if (name == "even" || name == "odd")
      r = v.is_number_integer() && (v.get<int64_t>() % 2 == 0) == (name == "even");
    else if ((name == "equalto" || name == "eq" || name == "sameas") &&
             args.size() == 1)
      r = equal(v, args[0]->eval(scope));
    else
      raise("the test '" + name + "' is not supported");
    return negated ? !r : r;
  }
};

std::string trimmed(const std::string &s, const std::string &chars = " \t\r\n\f\v") {
  size_t a = s.find_first_not_of(chars);
  if (a == std::string::npos)
    return "";
  size_t b = s.find_last_not_of(chars);
  return s.substr(a, b - a + 1);
}

/// transformers' tojson filter, json.dumps(x, ensure_ascii=False,
/// indent=None, separators=None, sort_keys=False): ", " and ": " between
/// items (",", and newlines indented by `indent` spaces, with an indent).
Json toJsonText(const Json &v, const Json &indentArg, bool ensureAscii,
                bool sortKeys) {
  if (isUndefined(v))
    return "null";
  if (!isUndefined(indentArg) && !indentArg.is_null() &&
      !indentArg.is_number_integer())
    raise("tojson's indent must be an integer");
  const bool pretty = indentArg.is_number_integer();
  // Python indents by ' ' * indent: nothing when negative.
  const int64_t indent =
      pretty ? std::max<int64_t>(0, indentArg.get<int64_t>()) : 0;
  if (indent > 4096)
    raise("tojson's indent of " + std::to_string(indent) + " is too wide");
  std::function<std::string(const Json &, int)> dump = [&](const Json &x,
                                                           int depth) {
    const std::string nl =
        pretty ? "\n" + std::string((depth + 1) * indent, ' ') : "";
    const std::string close =
        pretty ? "\n" + std::string(depth * indent, ' ') : "";
    if (x.is_object()) {
      if (x.empty())
        return std::string("{}");
      std::vector<std::string> keys;
      for (auto it = x.begin(); it != x.end(); ++it)
        keys.push_back(it.key());
      if (sortKeys)
        std::sort(keys.begin(), keys.end());
      std::string out = "{";
      bool first = true;
      for (const std::string &key : keys) {
        out += (first ? "" : pretty ? "," : ", ") + nl +
               Json(key).dump(-1, ' ', ensureAscii) + ": " +
               dump(x.at(key), depth + 1);
        first = false;
      }
      return out + close + "}";
    }
    if (x.is_array()) {
      if (x.empty())
        return std::string("[]");
      std::string out = "[";
      for (size_t i = 0; i < x.size(); ++i)
        out += (i ? (pretty ? "," : ", ") : "") + nl + dump(x[i], depth + 1);
      return out + close + "]";
    }
    return x.dump(-1, ' ', ensureAscii);
  };
  return dump(v, 0);
}

/// `text` with each code point replaced by map(cp) (a code point, or -1
/// for a byte that is not UTF-8, which stays as it is).
template <typename F>
std::string mapCodePoints(const std::string &text, F &&map) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    utf8proc_int32_t cp = -1;
    const utf8proc_ssize_t n = utf8proc_iterate(
        reinterpret_cast<const utf8proc_uint8_t *>(text.data() + i),
        static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    if (n <= 0) {
      map(-1);
      out += text[i++];
      continue;
    }
    utf8proc_uint8_t buffer[4];
    const utf8proc_ssize_t m = utf8proc_encode_char(map(cp), buffer);
    out.append(reinterpret_cast<const char *>(buffer), static_cast<size_t>(m));
    i += static_cast<size_t>(n);
  }
  return out;
}

/// Python's str.title: a cased character after an uncased one is
/// title-cased, after a cased one lower-cased ("they're" -> "They'Re").
std::string pythonTitle(const std::string &text) {
  bool previousCased = false;
  return mapCodePoints(text, [&](utf8proc_int32_t cp) {
    const utf8proc_category_t k =
        cp < 0 ? UTF8PROC_CATEGORY_CN : utf8proc_category(cp);
    const bool cased = k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL ||
                       k == UTF8PROC_CATEGORY_LT;
    const utf8proc_int32_t mapped =
        cased ? (previousCased ? utf8proc_tolower(cp) : utf8proc_totitle(cp))
              : cp;
    previousCased = cased;
    return mapped;
  });
}

/// Jinja's title filter (not str.title): words split at runs of whitespace
/// and -({[<, each one's first character upper-cased and the rest
/// lower-cased ("they're" -> "They're").
std::string jinjaTitle(const std::string &text) {
  bool wordStart = true;
  return mapCodePoints(text, [&](utf8proc_int32_t cp) {
    if (cp < 0) {
      wordStart = false;
      return cp;
    }
    const utf8proc_category_t k = utf8proc_category(cp);
    // Python's \s: ASCII and Unicode whitespace.
    const bool space = (cp >= 9 && cp <= 13) || (cp >= 0x1c && cp <= 0x1f) ||
                       cp == 0x85 || k == UTF8PROC_CATEGORY_ZS ||
                       k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
    const bool split =
        space || (cp > 0 && cp < 128 &&
                  std::strchr("-({[<", static_cast<char>(cp)) != nullptr);
    const utf8proc_int32_t mapped =
        split ? cp : wordStart ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
    wordStart = split;
    return mapped;
  });
}

Json callFilter(const std::string &name, const Json &v,
                const std::vector<Json> &args) {
  // An argument left out (or a keyword's earlier slots) is undefined.
  auto arg = [&](size_t i, Json fallback) {
    return i < args.size() && !isUndefined(args[i]) ? args[i] : fallback;
  };
  if (name == "trim")
    return trimmed(str(v));
  if (name == "abs") {
    const Json n = numeric(v);
    if (n.is_number_integer()) {
      if (n.get<int64_t>() == INT64_MIN)
        raise("abs overflows 64-bit integers");
      return std::abs(n.get<int64_t>());
    }
    if (n.is_number())
      return std::fabs(n.get<double>());
    raise("abs of " + std::string(v.type_name()));
  }
  if (name == "float") {
    // Jinja's float(value, default=0.0): a number, a string read as one,
    // otherwise the default.
    const Json n = numeric(v);
    if (n.is_number())
      return n.get<double>();
    if (v.is_string()) {
      const std::string text = trimmed(v.get<std::string>());
      if (text.find('_') != std::string::npos)
        raise("float of a string with '_' is not supported");
      char *end = nullptr;
      const double d = std::strtod(text.c_str(), &end);
      // strtod reads hexadecimal, which Python's float() does not.
      if (!text.empty() && *end == '\0' &&
          text.find_first_of("xX") == std::string::npos)
        return d;
    }
    return arg(0, Json(0.0));
  }
  if (name == "title")
    return jinjaTitle(str(v));
  if (name == "length" || name == "count") {
    if (v.is_string())
      return codePoints(v.get_ref<const std::string &>()).size() - 1;
    if (v.is_array() || v.is_object())
      return v.size();
    raise("length of " + std::string(v.type_name()));
  }
  if (name == "upper" || name == "lower") {
    std::string s = str(v);
    for (char &c : s)
      c = name == "upper" ? std::toupper(static_cast<unsigned char>(c))
                          : std::tolower(static_cast<unsigned char>(c));
    return s;
  }
  if (name == "capitalize") {
    std::string s = str(v);
    for (size_t i = 0; i < s.size(); ++i)
      s[i] = i == 0 ? std::toupper(static_cast<unsigned char>(s[i]))
                    : std::tolower(static_cast<unsigned char>(s[i]));
    return s;
  }
  if (name == "string")
    return str(v);
  if (name == "int") {
    // Jinja's int(value, default=0): an integer, a number truncated, a
    // string read as an integer or else as a number, otherwise the default.
    if (const Json base = arg(1, Json(10)); base != Json(10))
      raise("int's base other than 10 is not supported");
    auto truncated = [](double d) {
      // Past 64 bits Python's integers go on; ours are refused.
      if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0))
        raise("int of " + Json(d).dump() + " overflows 64-bit integers");
      return Json(static_cast<int64_t>(d));
    };
    if (v.is_number_integer())
      return v;
    if (v.is_number())
      return truncated(v.get<double>());
    const std::string text = trimmed(str(v));
    if (!text.empty()) {
      char *end = nullptr;
      errno = 0;
      const long long i = std::strtoll(text.c_str(), &end, 10);
      if (*end == '\0' && errno == 0)
        return Json(static_cast<int64_t>(i));
      const double d = std::strtod(text.c_str(), &end);
      if (*end == '\0' && std::isfinite(d))
        return truncated(d);
    }
    return arg(0, Json(0));
  }
  if (name == "tojson") {
    const Json separators = arg(2, Json());
    if (!separators.is_null())
      raise("tojson's separators are not supported");
    return toJsonText(v, arg(1, Json()), truthy(arg(0, false)),
                      truthy(arg(3, false)));
  }
  if (name == "default" || name == "d")
    return isUndefined(v) || (truthy(arg(1, false)) && !truthy(v)) ? arg(0, "")
                                                                    : v;
  if (name == "first" || name == "last") {
    if (v.is_string())
      return index(v, Json(name == "first" ? 0 : -1));
    if (!v.is_array() || v.empty())
      return undefined();
    return name == "first" ? v.front() : v.back();
  }
  if (name == "join") {
    if (!v.is_array())
      raise("join needs a list");
    std::string out, sep = str(arg(0, ""));
    // join(attribute=...) joins each item's attribute.
    const Json attribute = arg(1, Json());
    for (size_t i = 0; i < v.size(); ++i)
      out += (i ? sep : "") +
             str(attribute.is_null() ? v[i] : index(v[i], attribute));
    return out;
  }
  if (name == "replace") {
    const std::string text = str(v), from = str(arg(0, "")), to = str(arg(1, ""));
    // At most `count` replacements (Python's; None or negative: all).
    const Json count = arg(2, Json());
    if (!count.is_null() && !count.is_number_integer())
      raise("replace's count must be an integer");
    int64_t left = count.is_null() || count.get<int64_t>() < 0
                       ? INT64_MAX
                       : count.get<int64_t>();
    std::string out;
    if (from.empty()) {
      // Python's str.replace('', to): `to` before every code point and
      // after the last.
      const std::vector<size_t> at = codePoints(text);
      for (size_t c = 0; c + 1 < at.size(); ++c) {
        if (left > 0) {
          out += to;
          --left;
        }
        out.append(text, at[c], at[c + 1] - at[c]);
      }
      if (left > 0)
        out += to;
      return out;
    }
    size_t pos = 0;
    for (size_t hit; left > 0 && (hit = text.find(from, pos)) != std::string::npos;
         pos = hit + from.size(), --left)
      out.append(text, pos, hit - pos).append(to);
    return out.append(text, pos);
  }
  if (name == "list") {
    // Python's list(): a string's code points, a mapping's keys.
    if (v.is_array())
      return v;
    Json out = Json::array();
    if (v.is_string()) {
      const std::string &text = v.get_ref<const std::string &>();
      const std::vector<size_t> at = codePoints(text);
      for (size_t c = 0; c + 1 < at.size(); ++c)
        out.push_back(text.substr(at[c], at[c + 1] - at[c]));
    } else if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it)
        out.push_back(it.key());
    } else if (!isUndefined(v)) {
      raise("list of " + std::string(v.type_name()));
    }
    return out;
  }
  if (name == "reverse") {
    if (v.is_string()) {
      const std::string &text = v.get_ref<const std::string &>();
      const std::vector<size_t> at = codePoints(text);
      std::string out;
      for (size_t c = at.size() - 1; c > 0; --c)
        out.append(text, at[c - 1], at[c] - at[c - 1]);
      return out;
    }
    Json out = Json::array();
    for (auto it = v.rbegin(); it != v.rend(); ++it)
      out.push_back(*it);
    return out;
  }
  if (name == "items") {
    Json out = Json::array();
    for (auto it = v.begin(); it != v.end(); ++it)
      out.push_back({it.key(), *it});
    return out;
  }
  raise("the filter '" + name + "' is not supported");
}

/// A filter's arguments after the value, in Jinja's (and transformers')
/// order, so that keyword arguments land where their names say.
const std::vector<std::string> &filterParameters(const std::string &name) {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}},
      {"default", {"default_value", "boolean"}},
      {"d", {"default_value", "boolean"}},
      {"int", {"default", "base"}},
      {"float", {"default"}},
      {"replace", {"old", "new", "count"}},
      {"join", {"d", "attribute"}},
      {"map", {"attribute", "default"}},
  };
  static const std::vector<std::string> none;
  auto it = table.find(name);
  return it == table.end() ? none : it->second;
}

struct Filter : Expr {
  ExprPtr operand;
  std::string name;
  std::vector<ExprPtr> args;
  /// By argument: its keyword, or "" when positional.
  std::vector<std::string> keywords;
  Json eval(Scope &scope) const override {
    Json v = operand->eval(scope);
    std::vector<Json> values;
    std::map<std::string, Json> named;
    for (size_t i = 0; i < args.size(); ++i) {
      if (keywords[i].empty()) {
        if (!named.empty())
          raise("a positional argument follows a keyword argument");
        values.push_back(args[i]->eval(scope));
      } else {
        named[keywords[i]] = args[i]->eval(scope);
      }
    }
    // map(attribute=...) reads an attribute of each item; map('f', ...)
    // applies the filter f to each.
    if (name == "map" && v.is_array()) {
      Json out = Json::array();
      if (auto a = named.find("attribute"); a != named.end()) {
        const Json fallback =
            named.count("default") ? named["default"] : undefined();
        for (const Json &item : v) {
          Json x = index(item, a->second);
          out.push_back(isUndefined(x) ? fallback : x);
        }
        return out;
      }
      if (!named.empty() || values.empty() || !values[0].is_string())
        raise("map needs a filter name or attribute=");
      const std::vector<Json> rest(values.begin() + 1, values.end());
      for (const Json &item : v)
        out.push_back(callFilter(values[0].get<std::string>(), item, rest));
      return out;
    }
    const std::vector<std::string> &parameters = filterParameters(name);
    const size_t positional = values.size();
    for (const auto &[keyword, value] : named) {
      auto at = std::find(parameters.begin(), parameters.end(), keyword);
      if (at == parameters.end())
        raise("the filter '" + name + "' has no argument '" + keyword + "'");
      const size_t slot = static_cast<size_t>(at - parameters.begin());
      if (slot < positional)
        raise("the filter '" + name + "' got '" + keyword + "' twice");
      // Slots no argument names keep their defaults (undefined).
      if (values.size() <= slot)
        values.resize(slot + 1, undefined());
      values[slot] = value;
    }
    if (name == "selectattr" || name == "rejectattr") {
      if (!v.is_array() || values.empty())
        raise(name + " needs a list and an attribute");
      Json out = Json::array();
      for (const Json &item : v) {
        Json attr = index(item, values[0]);
        bool pass = values.size() >= 3 && str(values[1]) == "equalto"
                        ? equal(attr, values[2])
                        : truthy(attr);
        if (pass == (name == "selectattr"))
          out.push_back(item);
      }
      return out;
    }
    return callFilter(name, v, values);
  }
};

Json callMethod(const Json &self, const std::string &name,
                const std::vector<Json> &args) {
  if (self.is_string()) {
    const std::string s = self;
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      std::string chars = args.empty() ? " \t\r\n\f\v" : str(args[0]);
      size_t a = name == "rstrip" ? 0 : s.find_first_not_of(chars);
      if (a == std::string::npos)
        return "";
      size_t b = name == "lstrip" ? s.size() - 1 : s.find_last_not_of(chars);
      return s.substr(a, b - a + 1);
    }
    if (name == "startswith" || name == "endswith") {
      std::string x = args.empty() ? "" : str(args[0]);
      if (x.size() > s.size())
        return false;
      return name == "startswith" ? s.compare(0, x.size(), x) == 0
                                  : s.compare(s.size() - x.size(), x.size(), x) == 0;
    }
    if (name == "upper" || name == "lower" || name == "capitalize")
      return callFilter(name, self, {});
    if (name == "title")
      return pythonTitle(s);
    if (name == "replace")
      return callFilter("replace", self, args);
    if (name == "split") {
      Json out = Json::array();
      // At most `maxsplit` splits (Python's; -1: all).
      const Json most = args.size() > 1 ? args[1] : Json(-1);
      if (!most.is_number_integer())
        raise("split's maxsplit must be an integer");
      int64_t left = most.get<int64_t>() < 0 ? INT64_MAX : most.get<int64_t>();
      if (args.empty() || args[0].is_null()) {
        // Runs of whitespace; the rest after maxsplit keeps its inner
        // whitespace, without the leading run.
        const char *space = " \t\n\r\f\v";
        size_t pos = s.find_first_not_of(space);
        while (pos != std::string::npos) {
          if (left == 0) {
            out.push_back(s.substr(pos)); // the rest, as it is
            break;
          }
          size_t end = s.find_first_of(space, pos);
          if (end == std::string::npos) {
            out.push_back(s.substr(pos));
            break;
          }
          out.push_back(s.substr(pos, end - pos));
          --left;
          pos = s.find_first_not_of(space, end);
        }
        return out;
      }
      std::string sep = str(args[0]);
      // Python's ValueError; searching for "" would never move on.
      if (sep.empty())
        raise("empty separator");
      size_t pos = 0;
      for (size_t hit; left > 0 && (hit = s.find(sep, pos)) != std::string::npos;
           pos = hit + sep.size(), --left)
        out.push_back(s.substr(pos, hit - pos));
      out.push_back(s.substr(pos));
      return out;
    }
  }
  if (self.is_object()) {
    if (name == "get") {
      Json v = args.empty() ? undefined() : index(self, args[0]);
      return isUndefined(v) ? (args.size() > 1 ? args[1] : Json()) : v;
    }
    if (name == "items")
      return callFilter("items", self, {});
    if (name == "keys" || name == "values") {
      Json out = Json::array();
      for (auto it = self.begin(); it != self.end(); ++it)
        out.push_back(name == "keys" ? Json(it.key()) : *it);
      return out;
    }
  }
  raise("the method '" + name + "' of " + std::string(self.type_name()) +
        " is not supported");
}

struct Call : Expr {
  ExprPtr callee; // a Name or an Attr
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  Json eval(Scope &scope) const override {
    std::vector<Json> values;
    for (const auto &a : args)
      values.push_back(a->eval(scope));
    if (auto *attr = dynamic_cast<const Attr *>(callee.get()))
      return callMethod(attr->base->eval(scope), attr->name, values);
    auto *name = dynamic_cast<const Name *>(callee.get());
    if (!name)
      raise("only functions and methods can be called");
    if (name->name == "raise_exception")
      raise(values.empty() ? "raise_exception" : str(values[0]));
    if (name->name == "strftime_now") {
      // transformers' datetime.now().strftime(format): local time; C's
      // strftime is what Python's calls on Linux.
      if (values.size() != 1 || !values[0].is_string())
        raise("strftime_now takes one format string");
      const std::string format = values[0];
      if (format.size() > 256)
        raise("strftime_now's format is too long");
      const std::time_t now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buffer[1024];
      const size_t n = std::strftime(buffer, sizeof(buffer), format.c_str(), &local);
      if (n == 0 && !format.empty())
        raise("strftime_now's format gives nothing or too much");
      return std::string(buffer, n);
    }
    if (name->name == "namespace" || name->name == "dict") {
      Json ns = Json::object();
      for (const auto &[k, v] : kwargs)
        ns[k] = v->eval(scope);
      return ns;
    }
    if (name->name == "range") {
      int64_t a = 0, b = 0, st = 1;
      if (values.empty() || values.size() > 3)
        raise("range() takes 1 to 3 integers");
      if (values.size() == 1)
        b = integerOf(values[0], "range()'s stop");
      else
        a = integerOf(values[0], "range()'s start"),
        b = integerOf(values[1], "range()'s stop");
      if (values.size() == 3)
        st = integerOf(values[2], "range()'s step");
      if (st == 0)
        raise("range step cannot be zero");
      // Hugging Face renders templates in Jinja's sandbox, whose range()
      // refuses more than 100000 items (MAX_RANGE).
      constexpr size_t kMaxRange = 100000;
      Json out = Json::array();
      for (int64_t i = a; st > 0 ? i < b : i > b;) {
        if (out.size() == kMaxRange)
          raise("range() of more than 100000 items (the sandbox's limit)");
        out.push_back(i);
        if (__builtin_add_overflow(i, st, &i))
          break;
      }
      return out;
    }
    raise("the function '" + name->name + "' is not supported");
  }
};

class Parser {
public:
  explicit Parser(const std::string &text) : s_(text) {}

  ExprPtr parseExpression() {
    // Nesting deeper than any template writes would only exhaust the stack.
    if (++depth_ > kMaxDepth)
      raise("the expression nests too deeply");
    ExprPtr e = conditional();
    --depth_;
    return e;
  }
  /// A for loop's iterable: its 'if' filters the loop, it is no ternary.
  ExprPtr parseIterable() { return orExpr(); }
  bool atEnd() {
    skip();
    return pos_ >= s_.size();
  }
  /// The next identifier, or "" (not consumed unless `consume`).
  std::string peekWord() {
    skip();
    size_t p = pos_;
    while (p < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[p])) || s_[p] == '_'))
      ++p;
    return s_.substr(pos_, p - pos_);
  }
  bool word(const std::string &w) {
    if (peekWord() != w)
      return false;
    pos_ += w.size();
    return true;
  }
  std::string identifier() {
    std::string w = peekWord();
    if (w.empty() || std::isdigit(static_cast<unsigned char>(w[0])))
      raise("expected a name at '" + rest() + "'");
    pos_ += w.size();
    return w;
  }
  bool symbol(const std::string &sym) {
    skip();
    if (s_.compare(pos_, sym.size(), sym) != 0)
      return false;
    pos_ += sym.size();
    return true;
  }
  void expect(const std::string &sym) {
    if (!symbol(sym))
      raise("expected '" + sym + "' at '" + rest() + "'");
  }
  std::string rest() { return s_.substr(pos_, 20); }

private:
  void skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_])))
      ++pos_;
  }
  template <typename T> std::unique_ptr<T> make() { return std::make_unique<T>(); }

  ExprPtr conditional() {
    ExprPtr e = orExpr();
    size_t save = pos_;
    if (word("if")) {
      auto c = make<Conditional>();
      c->then = std::move(e);
      c->cond = orExpr();
      if (word("else"))
        c->otherwise = parseExpression();
      return c;
    }
    pos_ = save;
    return e;
  }
  ExprPtr binary(ExprPtr lhs, std::string op, ExprPtr rhs) {
    auto b = make<Binary>();
    b->op = std::move(op);
    b->lhs = std::move(lhs);
    b->rhs = std::move(rhs);
    return b;
  }
  ExprPtr orExpr() {
    ExprPtr e = andExpr();
    while (word("or"))
      e = binary(std::move(e), "or", andExpr());
    return e;
  }
  ExprPtr andExpr() {
    ExprPtr e = notExpr();
    while (word("and"))
      e = binary(std::move(e), "and", notExpr());
    return e;
  }
  ExprPtr notExpr() {
    if (word("not")) {
      if (++depth_ > kMaxDepth)
        raise("the expression nests too deeply");
      auto n = make<Not>();
      n->operand = notExpr();
      --depth_;
      return n;
    }
    return comparison();
  }
  ExprPtr comparison() {
    ExprPtr e = additive();
    // A run of comparisons is one chain (Python's a < b < c).
    std::unique_ptr<Chain> chain;
    auto compare = [&](const std::string &op) {
      if (!chain) {
        chain = make<Chain>();
        chain->operands.push_back(std::move(e));
      }
      chain->ops.push_back(op);
      chain->operands.push_back(additive());
    };
    auto finish = [&] {
      if (!chain)
        return;
      e = chain->ops.size() == 1
              ? binary(std::move(chain->operands[0]), chain->ops[0],
                       std::move(chain->operands[1]))
              : ExprPtr(std::move(chain));
      chain.reset();
    };
    for (;;) {
      skip();
      size_t save = pos_;
      if (word("not")) {
        if (word("in")) {
          compare("not in");
          continue;
        }
        pos_ = save;
        finish();
        return e;
      }
      if (word("in")) {
        compare("in");
        continue;
      }
      bool matched = false;
      for (const char *op : {"==", "!=", "<=", ">=", "<", ">"})
        if (symbol(op)) {
          compare(op);
          matched = true;
          break;
        }
      if (!matched) {
        finish();
        return e;
      }
    }
  }
  ExprPtr additive() {
    ExprPtr e = multiplicative();
    for (;;) {
      if (symbol("+"))
        e = binary(std::move(e), "+", multiplicative());
      else if (symbol("-"))
        e = binary(std::move(e), "-", multiplicative());
      else if (symbol("~"))
        e = binary(std::move(e), "~", multiplicative());
      else
        return e;
    }
  }
  ExprPtr multiplicative() {
    ExprPtr e = power();
    for (;;) {
      if (symbol("//"))
        e = binary(std::move(e), "//", power());
      else if (symbol("*"))
        e = binary(std::move(e), "*", power());
      else if (symbol("/"))
        e = binary(std::move(e), "/", power());
      else if (symbol("%"))
        e = binary(std::move(e), "%", power());
      else
        return e;
    }
  }
  /// Jinja's parse_pow: ** over unary operands, left to right (so -2 ** 2
  /// is 4 and 2 ** 3 ** 2 is 64, unlike Python).
  ExprPtr power() {
    ExprPtr e = unary();
    while (symbol("**"))
      e = binary(std::move(e), "**", unary());
    return e;
  }
  /// Jinja's parse_unary: a minus binds tighter than filters and tests
  /// (-1 | string is (-1) | string).
  ExprPtr unary(bool withFilters = true) {
    if (depth_ > kMaxDepth)
      raise("the expression nests too deeply");
    ExprPtr e;
    if (symbol("-")) {
      ++depth_;
      auto n = make<Negate>();
      n->operand = unary(false);
      --depth_;
      e = std::move(n);
    } else {
      e = postfix();
    }
    return withFilters ? filtered(std::move(e)) : std::move(e);
  }
  ExprPtr filtered(ExprPtr e) {
    for (;;) {
      // Tests bind here, as tight as filters (Jinja's parse_filter_expr):
      // 1 + 1 is odd is 1 + (1 is odd).
      if (word("is")) {
        auto t = make<Test>();
        t->negated = word("not");
        t->name = identifier();
        t->operand = std::move(e);
        if (symbol("(")) {
          if (!symbol(")")) {
            do
              t->args.push_back(parseExpression());
            while (symbol(","));
            expect(")");
          }
        } else {
          // One argument without parentheses, as Jinja's parse_test
          // takes it: a name (not and/or/else), a string, a number, a
          // list or a mapping.
          skip();
          const std::string w = peekWord();
          const char c = pos_ < s_.size() ? s_[pos_] : '\0';
          if ((!w.empty() && w != "and" && w != "or" && w != "else") ||
              c == '\'' || c == '"' || c == '[' || c == '{')
            t->args.push_back(postfix());
        }
        e = std::move(t);
        continue;
      }
      if (!symbol("|"))
        break;
      auto f = make<Filter>();
      f->operand = std::move(e);
      f->name = identifier();
      if (symbol("(")) {
        if (!symbol(")")) {
          do {
            // A keyword argument (indent=2) keeps its name (Filter::eval
            // places it).
            size_t save = pos_;
            std::string w = peekWord();
            if (!w.empty() && (pos_ += w.size(), symbol("=")) && !symbol("="))
              ;
            else {
              pos_ = save;
              w.clear();
            }
            f->keywords.push_back(w);
            f->args.push_back(parseExpression());
          } while (symbol(","));
          expect(")");
        }
      }
      e = std::move(f);
    }
    return e;
  }
  ExprPtr postfix() {
    ExprPtr e = primary();
    for (;;) {
      if (symbol(".")) {
        auto a = make<Attr>();
        a->base = std::move(e);
        a->name = identifier();
        e = std::move(a);
      } else if (symbol("[")) {
        ExprPtr first;
        skip();
        if (s_[pos_] != ':')
          first = parseExpression();
        if (symbol(":")) {
          auto sl = make<Slice>();
          sl->base = std::move(e);
          sl->start = std::move(first);
          skip();
          if (s_[pos_] != ']' && s_[pos_] != ':')
            sl->stop = parseExpression();
          if (symbol(":")) {
            skip();
            if (s_[pos_] != ']')
              sl->step = parseExpression();
          }
          expect("]");
          e = std::move(sl);
        } else {
          expect("]");
          auto sub = make<Subscript>();
          sub->base = std::move(e);
          sub->key = std::move(first);
          e = std::move(sub);
        }
      } else if (symbol("(")) {
        auto c = make<Call>();
        c->callee = std::move(e);
        if (!symbol(")")) {
          do {
            size_t save = pos_;
            std::string w = peekWord();
            if (!w.empty()) {
              pos_ += w.size();
              if (symbol("=") && !symbol("=")) {
                c->kwargs.emplace_back(w, parseExpression());
                continue;
              }
            }
            pos_ = save;
            c->args.push_back(parseExpression());
          } while (symbol(","));
          expect(")");
        }
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  /// The escape after a backslash in a string literal, into `out`: Jinja
  /// reads literals with Python's unicode-escape codec, so \\n, \\xhh,
  /// \\uXXXX, \\UXXXXXXXX, octal and the rest are Python's, and an escape
  /// it does not know keeps its backslash.
  void escape(std::string &out) {
    const char e = s_[pos_++];
    auto hex = [&](int digits) {
      uint32_t v = 0;
      for (int k = 0; k < digits; ++k, ++pos_) {
        if (pos_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[pos_])))
          raise(std::string("a \\") + e + " escape needs " +
                std::to_string(digits) + " hex digits");
        const char d = s_[pos_];
        v = v * 16 + (std::isdigit(static_cast<unsigned char>(d))
                          ? d - '0'
                          : std::tolower(static_cast<unsigned char>(d)) - 'a' + 10);
      }
      return v;
    };
    const char *simple = "\\'\"abfnrtv";
    const char *meaning = "\\'\"\a\b\f\n\r\t\v";
    if (const char *at = std::strchr(simple, e); at && e) {
      out += meaning[at - simple];
      return;
    }
    if (e == '\n')
      return; // a line continuation
    uint32_t cp = 0;
    if (e >= '0' && e <= '7') {
      cp = e - '0';
      for (int k = 0; k < 2 && pos_ < s_.size() && s_[pos_] >= '0' &&
                      s_[pos_] <= '7';
           ++k)
        cp = cp * 8 + (s_[pos_++] - '0');
    } else if (e == 'x') {
      cp = hex(2);
    } else if (e == 'u') {
      cp = hex(4);
    } else if (e == 'U') {
      cp = hex(8);
    } else if (e == 'N') {
      raise("the \\N{...} escape is not supported");
    } else {
      out += '\\';
      out += e;
      return;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      raise("the escape \\" + std::string(1, e) +
            " gives no Unicode scalar value");
    // UTF-8.
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | cp >> 6);
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | cp >> 12);
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | cp >> 18);
      out += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
      out += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  ExprPtr primary() {
    skip();
    if (pos_ >= s_.size())
      raise("an expression ends too soon");
    char c = s_[pos_];
    if (c == '\'' || c == '"') {
      ++pos_;
      std::string out;
      while (pos_ < s_.size() && s_[pos_] != c) {
        if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) {
          ++pos_;
          escape(out);
          continue;
        }
        out += s_[pos_++];
      }
      if (pos_ >= s_.size())
        raise("a string is never closed");
      ++pos_;
      return std::make_unique<Literal>(out);
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      // Jinja's literals: digits (1_000 groups them), then a fraction
      // and/or an exponent make a float.
      auto digit = [&](size_t at) {
        return at < s_.size() && std::isdigit(static_cast<unsigned char>(s_[at]));
      };
      auto digits = [&](size_t at) {
        while (digit(at) || (s_[at] == '_' && digit(at + 1) && at > 0 &&
                             digit(at - 1)))
          ++at;
        return at;
      };
      size_t end = digits(pos_);
      bool real = false;
      if (end < s_.size() && s_[end] == '.' && digit(end + 1)) {
        end = digits(end + 1);
        real = true;
      }
      if (end < s_.size() && (s_[end] == 'e' || s_[end] == 'E')) {
        size_t at = end + 1;
        if (at < s_.size() && (s_[at] == '+' || s_[at] == '-'))
          ++at;
        if (digit(at)) {
          end = digits(at);
          real = true;
        }
      }
      std::string num;
      for (size_t i = pos_; i < end; ++i)
        if (s_[i] != '_')
          num += s_[i];
      pos_ = end;
      errno = 0;
      char *stop = nullptr;
      if (real) {
        const double d = std::strtod(num.c_str(), &stop);
        if (!std::isfinite(d))
          raise("the float literal " + num + " is out of range");
        return std::make_unique<Literal>(Json(d));
      }
      const long long i = std::strtoll(num.c_str(), &stop, 10);
      if (errno == ERANGE)
        raise("the integer literal " + num + " overflows 64-bit integers");
      return std::make_unique<Literal>(Json(static_cast<int64_t>(i)));
    }
    if (symbol("(")) {
      ExprPtr e = parseExpression();
      expect(")");
      return e;
    }
    if (symbol("[")) {
      auto l = make<ListExpr>();
      if (!symbol("]")) {
        do
          l->items.push_back(parseExpression());
        while (symbol(",") && !symbol("]") && (true));
        skip();
        if (pos_ < s_.size() && s_[pos_] == ']')
          ++pos_;
      }
      return l;
    }
    if (symbol("{")) {
      auto d = make<DictExpr>();
      if (!symbol("}")) {
        do {
          ExprPtr k = parseExpression();
          expect(":");
          d->items.emplace_back(std::move(k), parseExpression());
        } while (symbol(","));
        expect("}");
      }
      return d;
    }
    std::string w = identifier();
    if (w == "true" || w == "True")
      return std::make_unique<Literal>(true);
    if (w == "false" || w == "False")
      return std::make_unique<Literal>(false);
    if (w == "none" || w == "None")
      return std::make_unique<Literal>(Json());
    return std::make_unique<Name>(w);
  }

  static constexpr int kMaxDepth = 200;
  const std::string &s_;
  size_t pos_ = 0;
  int depth_ = 0;
};

//===----------------------------------------------------------------------===//
// Statements
//===----------------------------------------------------------------------===//

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

enum class Flow { Normal, Break, Continue };

struct Node {
  virtual ~Node() = default;
  virtual Flow render(Scope &scope, std::string &out) const = 0;
};

Flow renderBody(const Body &body, Scope &scope, std::string &out) {
  for (const auto &n : body)
    if (Flow f = n->render(scope, out); f != Flow::Normal)
      return f;
  return Flow::Normal;
}

struct TextNode : Node {
  std::string text;
  Flow render(Scope &, std::string &out) const override {
    out += text;
    return Flow::Normal;
  }
};

struct OutputNode : Node {
  ExprPtr expr;
  Flow render(Scope &scope, std::string &out) const override {
    out += str(expr->eval(scope));
    return Flow::Normal;
  }
};

struct IfNode : Node {
  std::vector<std::pair<ExprPtr, Body>> branches; // null condition: else
  Flow render(Scope &scope, std::string &out) const override {
    for (const auto &[cond, body] : branches)
      if (!cond || truthy(cond->eval(scope)))
        return renderBody(body, scope, out);
    return Flow::Normal;
  }
};

struct ForNode : Node {
  std::vector<std::string> names;
  ExprPtr iterable, filter;
  Body body, otherwise;
  Flow render(Scope &scope, std::string &out) const override {
    Json items = iterable->eval(scope);
    if (items.is_object())
      items = callFilter("items", items, {});
    if (isUndefined(items) || items.is_null())
      items = Json::array();
    if (!items.is_array())
      raise("for needs a list, got " + std::string(items.type_name()));
    std::vector<Json> kept;
    for (const Json &item : items) {
      if (filter) {
        scope.frames.emplace_back();
        bind(scope, item);
        bool pass = truthy(filter->eval(scope));
        scope.frames.pop_back();
        if (!pass)
          continue;
      }
      kept.push_back(item);
    }
    if (kept.empty())
      return renderBody(otherwise, scope, out);
    const int64_t n = static_cast<int64_t>(kept.size());
    for (int64_t i = 0; i < n; ++i) {
      scope.frames.emplace_back();
      bind(scope, kept[i]);
      scope.set("loop", {{"index", i + 1},      {"index0", i},
                         {"revindex", n - i},   {"revindex0", n - i - 1},
                         {"first", i == 0},     {"last", i == n - 1},
                         {"length", n},
                         {"previtem", i > 0 ? kept[i - 1] : undefined()},
                         {"nextitem", i + 1 < n ? kept[i + 1] : undefined()}});
      Flow f = renderBody(body, scope, out);
      // Assignments inside a loop do not outlive it (jinja2's scoping);
      // namespaces, being objects set outside, do.
      scope.frames.pop_back();
      if (f == Flow::Break)
        break;
    }
    return Flow::Normal;
  }
  void bind(Scope &scope, const Json &item) const {
    if (names.size() == 1) {
      scope.set(names[0], item);
      return;
    }
    if (!item.is_array() || item.size() != names.size())
      raise("cannot unpack a loop item into " + std::to_string(names.size()) +
            " names");
    for (size_t k = 0; k < names.size(); ++k)
      scope.set(names[k], item[k]);
  }
};

struct SetNode : Node {
  std::string name, attribute;
  ExprPtr value;
  Flow render(Scope &scope, std::string &) const override {
    Json v = value->eval(scope);
    if (attribute.empty()) {
      scope.set(name, std::move(v));
      return Flow::Normal;
    }
    Json *ns = scope.find(name);
    if (!ns || !ns->is_object())
      raise("'" + name + "' is not a namespace");
    (*ns)[attribute] = std::move(v);
    return Flow::Normal;
  }
};

struct FlowNode : Node {
  Flow flow;
  Flow render(Scope &, std::string &) const override { return flow; }
};

class TemplateParser {
public:
  explicit TemplateParser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Body parse() {
    Body body = parseBody({});
    if (pos_ < tokens_.size())
      raise("unexpected {% " + trimmed(tokens_[pos_].body) + " %}");
    return body;
  }

private:
  /// Parses until a block tag whose first word is in `ends` (left unread).
  Body parseBody(const std::vector<std::string> &ends) {
    if (++depth_ > 100)
      raise("blocks nest too deeply");
    struct Leave {
      int &d;
      ~Leave() { --d; }
    } leave{depth_};
    Body body;
    while (pos_ < tokens_.size()) {
      const Token &t = tokens_[pos_];
      if (t.kind == Token::Text) {
        auto n = std::make_unique<TextNode>();
        n->text = t.body;
        body.push_back(std::move(n));
        ++pos_;
        continue;
      }
      if (t.kind == Token::Expr) {
        Parser p(t.body);
        auto n = std::make_unique<OutputNode>();
        n->expr = p.parseExpression();
        if (!p.atEnd())
          raise("unexpected '" + p.rest() + "' in {{ " + trimmed(t.body) + " }}");
        body.push_back(std::move(n));
        ++pos_;
        continue;
      }
      Parser p(t.body);
      const std::string keyword = p.peekWord();
      if (std::find(ends.begin(), ends.end(), keyword) != ends.end())
        return body;
      ++pos_;
      p.word(keyword);
      if (keyword == "if") {
        auto n = std::make_unique<IfNode>();
        ExprPtr cond = p.parseExpression();
        for (;;) {
          Body branch = parseBody({"elif", "else", "endif"});
          n->branches.emplace_back(std::move(cond), std::move(branch));
          if (pos_ >= tokens_.size())
            raise("{% if %} without {% endif %}");
          Parser q(tokens_[pos_++].body);
          std::string w = q.peekWord();
          q.word(w);
          if (w == "endif")
            break;
          cond = w == "elif" ? q.parseExpression() : nullptr;
        }
        body.push_back(std::move(n));
      } else if (keyword == "for") {
        auto n = std::make_unique<ForNode>();
        do
          n->names.push_back(p.identifier());
        while (p.symbol(","));
        if (!p.word("in"))
          raise("expected 'in' in {% for %}");
        n->iterable = p.parseIterable();
        if (p.word("if"))
          n->filter = p.parseExpression();
        n->body = parseBody({"else", "endfor"});
        if (pos_ >= tokens_.size())
          raise("{% for %} without {% endfor %}");
        Parser q(tokens_[pos_++].body);
        if (q.word("else")) {
          n->otherwise = parseBody({"endfor"});
          if (pos_ >= tokens_.size())
            raise("{% for %} without {% endfor %}");
          ++pos_;
        }
        body.push_back(std::move(n));
      } else if (keyword == "set") {
        auto n = std::make_unique<SetNode>();
        n->name = p.identifier();
        if (p.symbol("."))
          n->attribute = p.identifier();
        if (!p.symbol("="))
          raise("{% set %} blocks are not supported");
        n->value = p.parseExpression();
        body.push_back(std::move(n));
      } else if (keyword == "break" || keyword == "continue") {
        auto n = std::make_unique<FlowNode>();
        n->flow = keyword == "break" ? Flow::Break : Flow::Continue;
        body.push_back(std::move(n));
      } else if (keyword == "generation" || keyword == "endgeneration") {
        // transformers' assistant-mask markers: no output of their own.
      } else {
        raise("{% " + keyword + " %} is not supported");
      }
      if (keyword != "if" && keyword != "for" && !p.atEnd())
        raise("unexpected '" + p.rest() + "' in {% " + trimmed(t.body) + " %}");
    }
    if (!ends.empty())
      raise("{% " + ends.back() + " %} is missing");
    return body;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
};

} // namespace

Result<std::string> fairkv::serve::renderTemplate(const std::string &source,
                                                  const std::string &contextJson) {
  Json context = Json::parse(contextJson, nullptr, false);
  if (context.is_discarded() || !context.is_object())
    return makeError("the template's variables are not a JSON object");
  try {
    Body body = TemplateParser(lex(source)).parse();
    Scope scope;
    scope.frames.emplace_back();
    for (auto it = context.begin(); it != context.end(); ++it)
      scope.set(it.key(), *it);
    std::string out;
    renderBody(body, scope, out);
    return out;
  } catch (const TemplateError &e) {
    return makeError(e.message);
  } catch (const std::exception &e) {
    return makeError(std::string("the template failed: ") + e.what());
  }
}

Result<std::string> fairkv::serve::renderChatTemplate(
    const std::string &source, const std::string &messagesJson,
    const std::string &bosToken, const std::string &eosToken,
    bool addGenerationPrompt) {
  Json messages = Json::parse(messagesJson, nullptr, false);
  if (messages.is_discarded() || !messages.is_array())
    return makeError("messages must be a list");
  for (Json &m : messages) {
    if (!m.is_object() || !m.value("role", Json()).is_string())
      return makeError("every message needs a role");
    // OpenAI's content parts: the text parts, joined.
    if (m.contains("content") && m["content"].is_array()) {
      std::string text;
      for (const Json &part : m["content"])
        if (part.is_object() && part.value("type", "") == "text")
          text += part.value("text", "");
        else
          return makeError("only text content parts are supported");
      m["content"] = text;
    }
  }
  Json context = {{"messages", messages},
                  {"bos_token", bosToken},
                  {"eos_token", eosToken},
                  {"add_generation_prompt", addGenerationPrompt}};
  return renderTemplate(source, context.dump());
}
