// Templates, and an exception thrown through several frames that nobody catches.
#include <stdexcept>
#include <string>
#include <vector>
template <typename T> struct Parser {
    __attribute__((noinline)) T parse(const std::string &s) {
        if (s.empty()) throw std::runtime_error("empty input");
        return T(s.size());
    }
};
template <typename T> __attribute__((noinline)) T parse_all(const std::vector<std::string> &v) {
    Parser<T> p;
    T total{};
    for (const auto &s : v) total += p.parse(s);
    return total;
}
__attribute__((noinline)) int run(int n) {
    std::vector<std::string> inputs{"a", "bb", std::string(n > 5 ? "x" : "")};
    return parse_all<int>(inputs);
}
int main(int argc, char **) { return run(argc); }
