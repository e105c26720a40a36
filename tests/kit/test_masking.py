from recoup.kit.masking import mask_email, mask_name, mask_national_id, mask_phone


def test_masks_like_collectors_expect() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_national_id("110101199003074477") == "110101********4477"
    assert mask_name("张伟") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_email("zhang.wei@example.com") == "z***@example.com"
